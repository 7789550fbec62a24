"""``hacrm``: the crm-like command line, talking to the local daemon over its Unix socket."""
