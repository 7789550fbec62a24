"""hacrm's commands, one module per topic; ``MODULES`` is the order help lists them in."""
