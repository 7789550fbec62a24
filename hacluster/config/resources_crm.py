"""``resources.crm``: the resource configuration in crm configure syntax, parsed and printed.

Theory of operation
-------------------
``parse_resources_crm`` reads the file in three steps.

1. **Statements.**  ``_statements`` splits the text into statements of tokens, each token
   remembering its physical line, by crmsh's rules: a trailing ``\\`` joins the next line
   (inside a quoted value too); a line starting with ``#`` is a comment; ``"…"`` quotes
   (with ``\\"`` and ``\\\\`` escapes) and ``'…'`` quotes keep blanks inside a value.
2. **Grammar.**  The first word (or an unambiguous prefix of it, as crmsh allows) picks a
   handler in ``_HANDLERS`` (``primitive``, ``group``, ``clone``, ``ms``/``master``,
   ``location`` (node scores and rules), ``colocation``, ``order``, ``property``,
   ``rsc_defaults``, ``op_defaults``, ``node``, ``fencing_topology``).  crmsh 1.x set ids (``$id=…``) are dropped first.  A handler
   checks its own statement and appends model objects; a bad statement becomes one problem
   and parsing goes on.  A construct of a feature not built yet is refused through
   ``features.MISSING``, by name.
3. **Meaning.**  ``_Parser.finish`` applies the whole-file rules of ``crm_model`` (obsolete
   options, redundant constraints, utilization), then the finished ``ClusterConfig`` runs
   ``check()``; each of its problems is mapped back to the line that defined the element it
   names.  What was accepted with a note goes to ``warnings``.

Every problem reads ``path:line: <statement>: what; expected …`` and all of them are raised
together as one ``ConfigError``.  ``render_resources_crm`` prints the crm configure show
style back, and ``parse_resources_crm(render_resources_crm(cfg))`` gives ``cfg`` again for
every configuration the parser can produce.

Deliberate differences from crmsh, documented in docs/resources-file.md: node names are
lower-cased (as in ha.cf); constraints over three or more resources become a chain of pairs;
a ``# note`` after a statement is a comment; constraints a group already implies are dropped
with a warning.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Final

from hacluster.config.crm_model import (
    drop_redundant,
    modernize_properties,
    pacemaker_meta_value,
    role_op_warning,
    uname_rule_node,
)
from hacluster.config.features import MISSING
from hacluster.config.values import is_number
from hacluster.core.cib import (
    AGENT_CLASSES,
    CLONE_META,
    ORDER_ACTIONS,
    ORDER_KINDS,
    RULE_TYPES,
    TIME_HINT,
    Clone,
    ClusterConfig,
    Colocation,
    Expression,
    FencingLevel,
    Group,
    Location,
    Op,
    Order,
    Pairs,
    Primitive,
    Rule,
    canonical_role,
    format_score,
    format_time_ms,
    parse_boolean,
    parse_score,
    parse_time_ms,
    unknown_property_hint,
)
from hacluster.errors import ConfigError

OP_NAMES: Final = (
    "start",
    "stop",
    "monitor",
    "status",
    "reload",
    "reload-agent",
    "promote",
    "demote",
    "notify",
    "migrate_to",
    "migrate_from",
    "validate-all",
    "meta-data",
)
_OP_ATTRIBUTES: Final = ("interval", "timeout", "OCF_CHECK_LEVEL", "depth", "on-fail", "role")
_UNSUPPORTED: Final[dict[str, str]] = {
    "rsc_template": "templates",
    "template": "templates",
    "tag": "tags",
    "rsc_ticket": "tickets",
    "alert": "alerts",
    "acl_target": "acls",
    "user": "acls",
    "role": "acls",
    "bundle": "bundles",
}
"""Statements for a feature not built yet: ``features.MISSING`` says which and what to write."""
_SHELL_COMMANDS: Final = ("commit", "end", "up", "verify")
"""crm shell commands found in files fed to ``crm configure`` on standard input."""
_NODE_RE: Final = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_BARE_RE: Final = re.compile(r"^[A-Za-z0-9_.,:/@%+=-]+$")


@dataclass(frozen=True, slots=True)
class Token:
    """One word of a statement and the physical line it is on."""

    text: str
    line: int
    quoted: bool = False
    opens_quoted: bool = False
    """The word began with a quote (``"$id=x"`` is a value; ``$id="x"`` is a set id)."""

    def is_word(self, *words: str) -> bool:
        """An unquoted keyword (quoted text is always a value)."""
        return not self.quoted and self.text in words


def parse_resources_crm(
    text: str, path: str = "resources.crm", *, epoch: int = 0, warnings: list[str] | None = None
) -> ClusterConfig:
    """Parse crm configure syntax into a checked ``ClusterConfig``; ``ConfigError`` lists every problem.

    ``warnings`` (if given) receives ``file:line`` lines about what was accepted with a note:
    obsolete spellings, redundant constraints, ignored attributes.
    """
    parser = _Parser(path)
    for statement in _statements(text, path, parser.problems):
        parser.statement(statement)
    parser.finish()
    cfg = parser.result(epoch)
    for subject, what in cfg.problems():
        if not parser.broken.intersection(
            re.findall(r"[\w.-]+", what)
        ):  # else it only echoes a bad statement
            parser.problems.append(f"{parser.where_of(subject)}: {subject}: {what}")
    if warnings is not None:
        warnings.extend(sorted(parser.warnings, key=_line_of))
    if parser.problems:
        raise ConfigError(sorted(parser.problems, key=_line_of))
    return cfg


def _line_of(problem: str) -> int:
    """The line a ``path:line: …`` problem is about, for reporting in file order (0: none)."""
    match = re.match(r"^.*?:(\d+): ", problem)
    return int(match.group(1)) if match else 0


# ---------------------------------------------------------------------------------------------
# Step 1: statements and tokens


def _statements(text: str, path: str, problems: list[str]) -> list[list[Token]]:
    """The statements of ``text``: lists of tokens, each token knowing its physical line.

    As in crmsh: a line ending in ``\\`` continues the statement on the next line, also inside
    a quoted value (the backslash goes, the next line's indentation too, so ``"a b \\`` +
    ``    c"`` is ``a b c``); a line whose first non-blank is ``#`` is a comment.  A ``#``
    that starts a word and is followed by a blank (``… # note``) starts a comment too (crmsh
    refuses that; it is accepted here because it cannot mean anything else), while a ``#``
    glued to a word is text: ``#uname`` in a rule, ``password=ab#c``.
    """
    statements: list[list[Token]] = []
    current: list[Token] = []
    state = _TokenState()
    # Only \n ends a line: str.splitlines() would also split on characters a quoted value may hold.
    for lineno, raw in enumerate(text.split("\n"), start=1):
        physical = raw.removesuffix("\r")
        if state.quote is None and not current and physical.lstrip().startswith("#"):
            continue
        if state.quote is not None:
            physical = physical.lstrip(" \t")
        continued, error = _tokenize(physical, lineno, state, current)
        if error is not None:
            problems.append(f"{path}:{lineno}: {error}")
            current = []
            state = _TokenState()
            continue
        if not continued and current:
            statements.append(current)
            current = []
    if state.quote is not None:
        problems.append(
            f"{path}:{state.quote_line}: unterminated {state.quote}quote; expected a closing {state.quote}"
        )
    elif current:
        statements.append(current)
    return statements


@dataclass(slots=True)
class _TokenState:
    """A word under construction, which a quoted value may carry over a line end."""

    word: list[str] = field(default_factory=list)
    in_word: bool = False
    quoted: bool = False
    quote: str | None = None
    quote_line: int = 0
    word_line: int = 0
    opens_quoted: bool = False


def _tokenize(physical: str, lineno: int, st: _TokenState, out: list[Token]) -> tuple[bool, str | None]:
    """Append the tokens of one physical line to ``out``; whether the statement continues."""
    i, n = 0, len(physical)
    while i < n:
        char = physical[i]
        if st.quote is not None:
            if char == st.quote:
                st.quote = None
            elif char == "\\" and physical[i + 1 :].strip() == "":
                return True, None  # a quoted value continues on the next line
            elif st.quote == '"' and char == "\\" and i + 1 < n and physical[i + 1] in '\\"':
                i += 1
                st.word.append(physical[i])
            else:
                st.word.append(char)
            i += 1
            continue
        if char in " \t\r\f\v":
            _end_word(st, out)
        elif char == "#" and not st.in_word and (i + 1 == n or physical[i + 1] in " \t"):
            break
        elif char == "\\" and physical[i + 1 :].strip() == "":
            _end_word(st, out)
            return True, None
        elif char in "\"'":
            if not st.in_word:
                st.word_line = lineno
                st.opens_quoted = True
            st.quote, st.quote_line = char, lineno
            st.quoted = st.in_word = True
        else:
            if not st.in_word:
                st.word_line = lineno
            st.word.append(char)
            st.in_word = True
        i += 1
    if st.quote is not None:
        mark = st.quote
        return (
            False,
            f"unterminated {mark}quote; expected a closing {mark} on the same line, or \\ to continue it",
        )
    _end_word(st, out)
    return False, None


def _end_word(st: _TokenState, out: list[Token]) -> None:
    if st.in_word:
        out.append(Token("".join(st.word), st.word_line, st.quoted, st.opens_quoted))
    st.word, st.in_word, st.quoted, st.opens_quoted = [], False, False, False


# ---------------------------------------------------------------------------------------------
# Step 2: grammar


@dataclass(slots=True)
class _Parser:
    path: str
    problems: list[str] = field(default_factory=list)
    primitives: list[Primitive] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    locations: list[Location] = field(default_factory=list)
    colocations: list[Colocation] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    fencing_levels: list[FencingLevel] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    rsc_defaults: dict[str, str] = field(default_factory=dict)
    op_defaults: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, Pairs] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    """Line of the element each ``check()`` subject names (``"primitive vip"`` → 3)."""
    broken: set[str] = field(default_factory=set)
    """Ids of statements that failed to parse; ``check()`` complaints about them are dropped."""
    warnings: list[str] = field(default_factory=list)
    clones: list[Clone] = field(default_factory=list)
    role_ops: list[tuple[str, Op, str]] = field(default_factory=list)
    """``(primitive, op, warning)`` for each op with a promotable-clone role: kept on a
    primitive in a promotable clone, dropped with the warning elsewhere (``finish``)."""
    utilization: list[tuple[str, int]] = field(default_factory=list)
    """``(element, line)`` of each utilization section, judged once placement-strategy is known."""

    def statement(self, tokens: list[Token]) -> None:
        head = tokens[0]
        if head.is_word(*_SHELL_COMMANDS) and len(tokens) == 1:
            self.warnings.append(
                f"{self.path}:{head.line}: {head.text}: a crm shell command, not configuration; ignored "
                "(the file is read as a whole); remove the line"
            )
            return
        without_ids = self._without_set_ids(tokens)
        if without_ids is None:
            return
        tokens = without_ids
        handler = _HANDLERS.get(head.text)
        if handler is None and not head.quoted:
            # crmsh reads any unambiguous prefix of a keyword ("primitiv", "prim"); so do we
            matches = (
                [word for word in _HANDLERS if word.startswith(head.text)] if len(head.text) >= 3 else []
            )
            if len(matches) == 1:
                self.warnings.append(
                    f"{self.path}:{head.line}: {head.text}: read as {matches[0]}, as crmsh reads an "
                    f"abbreviated keyword; write {matches[0]}"
                )
                handler = _HANDLERS[matches[0]]
        if handler is None or head.quoted:
            self.problems.append(self._unknown_statement(head))
            if head.text in _UNSUPPORTED and len(tokens) > 1:
                self.broken.add(tokens[1].text)  # references to it would only repeat the refusal
            return
        try:
            handler(self, tokens)
        except _StatementError as exc:
            self.problems.append(f"{self.path}:{exc.line}: {_head(tokens)}: {exc}")
            if len(tokens) > 1:
                self.broken.add(tokens[1].text)

    def _without_set_ids(self, tokens: list[Token]) -> list[Token] | None:
        """crmsh 1.x writes the id of each attribute set (``property $id="cib-bootstrap-options"``,
        ``operations $id=…``, ``rule $id=…``); one set each is kept here, so the ids go.

        None (after recording the problem) for a reference to another set (``$id-ref=``, or
        ``params @ID``), which cannot be kept.
        """
        kept: list[Token] = []
        for index, token in enumerate(tokens):
            after_section = index > 0 and tokens[index - 1].is_word("params", "meta", "utilization")
            if token.opens_quoted:
                kept.append(token)
            elif token.text.startswith("$id="):
                continue
            elif token.text.startswith("$id-ref=") or (token.text.startswith("@") and after_section):
                self.problems.append(
                    f"{self.path}:{token.line}: {_head(tokens)}: {token.text!r}: references to another "
                    "attribute set are not supported; copy the attributes here"
                )
                if len(tokens) > 1:
                    self.broken.add(tokens[1].text)
                return None
            elif token.is_word("operations") and index > 2:
                continue  # `operations $id=…` only names the set of the op lines after it
            else:
                kept.append(token)
        return kept

    def _unknown_statement(self, head: Token) -> str:
        where = f"{self.path}:{head.line}: {head.text}"
        if head.text in _UNSUPPORTED:
            return f"{self.path}:{head.line}: " + MISSING[_UNSUPPORTED[head.text]].message(head.text)
        if head.text == "fencing-topology":
            return f"{where}: write fencing_topology (with an underscore)"
        if "=" in head.text:
            return (
                f"{where}: a NAME=VALUE where a statement should begin; is a line broken inside a word? "
                f"join it to the end of line {head.line - 1}, or end that line with \\ to continue it"
            )
        guess = difflib.get_close_matches(head.text, list(_HANDLERS), n=1)
        hint = f"; did you mean {guess[0]}?" if guess else ""
        known = ", ".join(_HANDLERS)
        return f"{where}: unknown statement; expected one of {known}{hint}"

    def _meta_values(self, pairs: list[tuple[Token, str]]) -> list[tuple[Token, str]]:
        out = []
        for key, value in pairs:
            read, warning = pacemaker_meta_value(key.text, value)
            if warning is not None:
                self.warnings.append(f"{self.path}:{key.line}: {warning}")
            out.append((key, read))
        return out

    def finish(self) -> None:
        """The whole-file rules of ``crm_model``: redundant constraints, obsolete options, utilization."""
        self._place_role_ops()
        self.orders, self.colocations, notes = drop_redundant(self.groups, self.orders, self.colocations)
        for subject, what in notes:
            self.warnings.append(f"{self.where_of(subject)}: {subject}: {what}")
        for name, what in modernize_properties(self.properties, self.rsc_defaults, self.op_defaults):
            self.warnings.append(f"{self.where_of(f'property {name}')}: property {name}: {what}")
        for name in self.properties:
            hint = unknown_property_hint(name)
            if hint is not None:
                self.warnings.append(f"{self.where_of(f'property {name}')}: property {name}: {hint}")
        strategy = self.properties.get("placement-strategy", "default")
        for element, line in self.utilization:
            if strategy == "default":
                self.warnings.append(
                    f"{self.path}:{line}: {element}: utilization is ignored, as Pacemaker ignores it with "
                    "placement-strategy=default; kept out of the configuration"
                )
            else:
                self.problems.append(
                    f"{self.path}:{line}: {element}: "
                    + MISSING["utilization"].message(f"placement-strategy={strategy}")
                )

    def _place_role_ops(self) -> None:
        """Ops with role Promoted/Unpromoted go to their primitive when it is in a promotable
        clone; elsewhere Pacemaker never runs them, so they are dropped with a warning."""
        promotable: set[str] = set()
        groups = {g.id: g.members for g in self.groups}
        for clone in self.clones:
            if any(k == "promotable" and _is_true_word(v) for k, v in clone.meta):
                promotable.update(groups.get(clone.child, (clone.child,)))
        extra: dict[str, list[Op]] = {}
        for rsc, op, warning in self.role_ops:
            if rsc in promotable:
                extra.setdefault(rsc, []).append(op)
            else:
                self.warnings.append(warning)
        self.primitives = [
            replace(p, ops=(*p.ops, *extra[p.id])) if p.id in extra else p for p in self.primitives
        ]

    def where_of(self, subject: str) -> str:
        words = subject.split()
        for key in (subject, " ".join(words[:2]), words[0] if words else ""):
            if key in self.lines:
                return f"{self.path}:{self.lines[key]}"
        return self.path

    def result(self, epoch: int) -> ClusterConfig:
        return ClusterConfig(
            epoch=epoch,
            primitives=tuple(self.primitives),
            groups=tuple(self.groups),
            locations=tuple(self.locations),
            colocations=tuple(self.colocations),
            orders=tuple(self.orders),
            properties=tuple(self.properties.items()),
            rsc_defaults=tuple(self.rsc_defaults.items()),
            op_defaults=tuple(self.op_defaults.items()),
            node_attributes=tuple(self.nodes.items()),
            fencing_levels=tuple(self.fencing_levels),
            source=self.path,
            clones=tuple(self.clones),
        )

    # -- primitive ------------------------------------------------------------------------------

    def on_primitive(self, tokens: list[Token]) -> None:
        usage = (
            "write primitive ID CLASS:PROVIDER:TYPE [params k=v …] [op NAME k=v …] [meta k=v …] [args A …]"
        )
        if len(tokens) < 3:
            raise _StatementError(tokens[-1].line, f"needs an id and an agent; {usage}")
        rsc_id, agent = tokens[1], tokens[2]
        agent_class, provider, agent_type = _agent(agent)
        params: list[tuple[Token, str]] = []
        meta: list[tuple[Token, str]] = []
        ops: list[Op] = []
        args: list[str] = []
        rest = tokens[3:]
        i = 0
        if rest and not rest[0].is_word(*_SECTION_WORDS) and "=" in rest[0].text:
            # crmsh lets `params` be left out right after the agent: primitive p Dummy fake=1
            pairs, i = _pairs_after(rest, 0, _SECTION_WORDS)
            _extend_unique(params, pairs, "params ")
        while i < len(rest):
            keyword = rest[i]
            if keyword.is_word("params", "meta"):
                pairs, i = _pairs_after(rest, i + 1, _SECTION_WORDS)
                target = params if keyword.text == "params" else meta
                if keyword.text == "meta":
                    pairs = self._meta_values(pairs)
                _extend_unique(target, pairs, f"{keyword.text} ")
            elif keyword.is_word("op"):
                if i + 1 >= len(rest) or rest[i + 1].quoted or "=" in rest[i + 1].text:
                    raise _StatementError(keyword.line, "op needs a name; write e.g. op monitor interval=10s")
                pairs, end = _pairs_after(rest, i + 2, _SECTION_WORDS)
                role_pair = next(((k, v) for k, v in pairs if k.text == "role"), None)
                if role_pair is not None:
                    self._legacy_role_warning(role_pair[0], role_pair[1], f"op {rest[i + 1].text} role=")
                op = _op(rest[i + 1], pairs)
                if op.role in ("Promoted", "Unpromoted"):
                    assert role_pair is not None
                    warning = role_op_warning(rsc_id.text, rest[i + 1].text, role_pair[1])
                    self.role_ops.append((rsc_id.text, op, f"{self.path}:{rest[i].line}: {warning}"))
                else:
                    ops.append(op)
                i = end
            elif keyword.is_word("args"):
                if agent_class != "heartbeat":
                    raise _StatementError(
                        keyword.line, "args is only for heartbeat-class scripts; use params"
                    )
                i += 1
                while i < len(rest) and not rest[i].is_word(*_SECTION_WORDS):
                    args.append(rest[i].text)
                    i += 1
            elif keyword.is_word("utilization"):
                _, i = _pairs_after(rest, i + 1, _SECTION_WORDS)
                self.utilization.append((f"primitive {rsc_id.text}", keyword.line))
            else:
                raise _StatementError(
                    keyword.line, f"unexpected {keyword.text!r}; expected params, op, meta or args"
                )
        self.lines[f"primitive {rsc_id.text}"] = rsc_id.line
        self.primitives.append(
            Primitive(
                id=rsc_id.text,
                agent_class=agent_class,
                provider=provider,
                type=agent_type,
                params=tuple((k.text, v) for k, v in params),
                ops=tuple(ops),
                meta=tuple((k.text, v) for k, v in meta),
                args=tuple(args),
            )
        )

    # -- group ----------------------------------------------------------------------------------

    def on_group(self, tokens: list[Token]) -> None:
        if len(tokens) < 3:
            raise _StatementError(
                tokens[-1].line, "needs an id and members; write group ID RSC [RSC …] [meta k=v …]"
            )
        members: list[str] = []
        meta: list[tuple[Token, str]] = []
        i = 2
        while i < len(tokens):
            token = tokens[i]
            if token.is_word("meta"):
                pairs, i = _pairs_after(tokens, i + 1, ("meta",))
                _extend_unique(meta, self._meta_values(pairs), "meta ")
                continue
            if token.is_word("params"):
                raise _StatementError(token.line, "a group has no params; put them on its primitives")
            if "=" in token.text:
                raise _StatementError(
                    token.line, f"{token.text!r} looks like an attribute; write meta {token.text}"
                )
            members.append(token.text)
            i += 1
        for key, value in meta:
            if key.text in ("ordered", "collocated") and not _is_true_word(value):
                raise _StatementError(
                    key.line, MISSING["group-unordered"].message(f"meta {key.text}={value}")
                )
        self.lines[f"group {tokens[1].text}"] = tokens[1].line
        self.groups.append(Group(tokens[1].text, tuple(members), tuple((k.text, v) for k, v in meta)))

    # -- constraints ----------------------------------------------------------------------------

    def on_location(self, tokens: list[Token]) -> None:
        usage = (
            "expected SCORE: NODE or rule SCORE: EXPRESSION after the resource; write location ID RSC "
            "SCORE: NODE, e.g. location prefer-n1 web 100: node1"
        )
        _refuse_sets(tokens)
        if len(tokens) < 4:
            raise _StatementError(tokens[-1].line, usage)
        rsc_text, _, rsc_role = tokens[2].text.partition(":")
        role = self._role(tokens[2], rsc_role) if rsc_role else None
        rest = tokens[3:]
        if rest and rest[0].text.startswith("role=") and not rest[0].quoted:
            role = self._role(rest[0], rest[0].text.partition("=")[2])
            rest = rest[1:]
        rsc = _plain_rsc(Token(rsc_text, tokens[2].line))
        self.lines[f"location {tokens[1].text}"] = tokens[1].line
        if rest and rest[0].is_word("rule"):
            rules = self._rules(rest)
            node_score = _single_node_rule(rules)
            if node_score is not None and not (role and rules[0].role):
                # `rule 100: #uname eq n1` is a plain node score
                node, score = node_score
                self.locations.append(Location(tokens[1].text, rsc, node, score, role=role or rules[0].role))
            else:
                self.locations.append(Location(tokens[1].text, rsc, "", 0, rules=rules, role=role))
            return
        words = _split_score_colon(rest)
        if len(words) != 2 or not words[0].text.endswith(":"):
            raise _StatementError(tokens[-1].line, usage)
        score = _score(words[0])
        node = _node_name(words[1])
        self.locations.append(Location(tokens[1].text, rsc, node, score, role=role))

    def _rules(self, tokens: list[Token]) -> tuple[Rule, ...]:
        """``rule [$role=R] SCORE|score-attribute=NAME: EXPR [rule …]``, one ``Rule`` each."""
        starts = [i for i, t in enumerate(tokens) if t.is_word("rule")]
        rules = []
        for n, start in enumerate(starts):
            stop = starts[n + 1] if n + 1 < len(starts) else len(tokens)
            rules.append(self._rule(tokens[start], tokens[start + 1 : stop]))
        return tuple(rules)

    def _rule(self, head: Token, words: list[Token]) -> Rule:
        usage = (
            "write rule [$role=Promoted] SCORE: EXPRESSION, e.g. rule -inf: not_defined pingd or pingd lte 0"
        )
        role = None
        while words and words[0].text.startswith(("$role=", "role=")) and not words[0].quoted:
            role = self._role(words[0], words[0].text.partition("=")[2])
            words = words[1:]
        if words and ":" in words[0].text and not words[0].text.endswith(":"):
            score_text, _, expression = words[0].text.partition(":")
            words = [Token(score_text + ":", words[0].line), Token(expression, words[0].line), *words[1:]]
        if not words or not words[0].text.endswith(":"):
            raise _StatementError(head.line, f"a rule needs a score and a colon; {usage}")
        score_word = words[0].text.removesuffix(":")
        score, score_attribute = 0, None
        if score_word.startswith("score-attribute="):
            score_attribute = score_word.partition("=")[2]
        elif score_word.startswith("score="):
            score = _score(Token(score_word.partition("=")[2], words[0].line))
        else:
            try:
                score = parse_score(score_word)
            except ValueError:
                score_attribute = score_word  # crmsh: a non-numeric score names the score attribute
        if score_attribute is not None and not score_attribute:
            raise _StatementError(words[0].line, f"score-attribute names no attribute; {usage}")
        expressions, joins = _expressions(words[1:], usage)
        if len(set(joins)) > 1:
            raise _StatementError(
                head.line,
                "a rule mixes and with or; hacluster (like crmsh) has no parentheses, so write one rule "
                "per alternative: location ID RSC rule S: a and b rule S: c",
            )
        return Rule(score, expressions, joins[0] if joins else "and", score_attribute, role)

    def _role(self, token: Token, text: str) -> str:
        role, _ = canonical_role(text)
        if role is None or role == "Stopped":
            raise _StatementError(
                token.line, f"role {text!r} is unknown; expected Started, Promoted or Unpromoted"
            )
        self._legacy_role_warning(token, token.text, "")
        return role

    def _legacy_role_warning(self, token: Token, text: str, where: str) -> None:
        role, legacy = canonical_role(text.rpartition(":")[2].rpartition("=")[2])
        if legacy:
            self.warnings.append(
                f"{self.path}:{token.line}: {where}{text}: read as {role}, the name Pacemaker 2 gives "
                f"this role; write {role}"
            )

    def on_colocation(self, tokens: list[Token]) -> None:
        usage = "write colocation ID SCORE: RSC WITH_RSC, e.g. colocation web-with-ip inf: web vip"
        _refuse_sets(tokens)
        if len(tokens) < 5 or not tokens[2].text.endswith(":"):
            raise _StatementError(tokens[-1].line, usage)
        score = _score(tokens[2])
        names = [self._rsc_role(t) for t in tokens[3:]]
        for n, ((rsc, rsc_role), (with_rsc, with_role)) in enumerate(itertools.pairwise(names), start=1):
            constraint_id = tokens[1].text if len(names) == 2 else f"{tokens[1].text}-{n}"
            self.lines[f"colocation {constraint_id}"] = tokens[1].line
            self.colocations.append(Colocation(constraint_id, score, rsc, with_rsc, rsc_role, with_role))

    def _rsc_role(self, token: Token) -> tuple[str, str | None]:
        if "=" in token.text:
            raise _StatementError(
                token.line, f"{token.text!r} is not supported; colocation takes RSC or RSC:ROLE only"
            )
        rsc, colon, role = token.text.partition(":")
        if not colon:
            return rsc, None
        canonical = self._role(token, role)
        return rsc, None if canonical == "Started" else canonical

    def on_order(self, tokens: list[Token]) -> None:
        usage = "write order ID KIND: FIRST THEN, e.g. order ip-then-web Mandatory: vip web"
        _refuse_sets(tokens)
        if len(tokens) < 5 or not tokens[2].text.endswith(":"):
            raise _StatementError(tokens[-1].line, usage)
        kind = _order_kind(tokens[2])
        symmetrical = True
        names: list[tuple[str, str]] = []
        for token in tokens[3:]:
            if token.text.startswith("symmetrical=") and not token.quoted:
                symmetrical = _boolean(token, token.text.partition("=")[2])
            elif token.text.startswith("sequential=") and not token.quoted:
                if not _boolean(token, token.text.partition("=")[2]):
                    raise _StatementError(token.line, MISSING["resource-sets"].message(token.text))
            elif "=" in token.text:
                raise _StatementError(
                    token.line, f"{token.text!r} is not supported; only symmetrical=true|false is"
                )
            else:
                names.append(_rsc_action(token))
        if len(names) < 2:
            raise _StatementError(tokens[-1].line, usage)
        for n, ((first, first_action), (then, then_action)) in enumerate(itertools.pairwise(names), start=1):
            constraint_id = tokens[1].text if len(names) == 2 else f"{tokens[1].text}-{n}"
            self.lines[f"order {constraint_id}"] = tokens[1].line
            self.orders.append(
                Order(constraint_id, kind, first, then, symmetrical, first_action, then_action)
            )

    # -- clones ---------------------------------------------------------------------------------

    def on_clone(self, tokens: list[Token]) -> None:
        self._clone(tokens, legacy=False)

    def on_ms(self, tokens: list[Token]) -> None:
        self._clone(tokens, legacy=True)

    def _clone(self, tokens: list[Token], *, legacy: bool) -> None:
        keyword = tokens[0].text
        usage = f"write {keyword} ID RSC [meta k=v …], e.g. clone ping-clone ping meta clone-max=3"
        if len(tokens) < 3 or tokens[2].is_word("meta", "params"):
            raise _StatementError(tokens[-1].line, f"needs an id and the resource it clones; {usage}")
        meta: list[tuple[Token, str]] = []
        i = 3
        while i < len(tokens):
            if tokens[i].is_word("meta"):
                pairs, i = _pairs_after(tokens, i + 1, ("meta", "params"))
                _extend_unique(meta, self._meta_values(pairs), "meta ")
            elif tokens[i].is_word("params"):
                # crmsh writes them as instance attributes of the clone; Pacemaker 1.0 read its
                # clone options from there too.  Clone options are read as meta, with a warning.
                pairs, i = _pairs_after(tokens, i + 1, ("meta", "params"))
                for key, _ in pairs:
                    if key.text not in CLONE_META and key.text not in ("master-max", "master-node-max"):
                        raise _StatementError(
                            key.line, f"params {key.text}: a clone has no params; put them on its primitive"
                        )
                self.warnings.append(
                    f"{self.path}:{tokens[i - 1].line}: {keyword} {tokens[1].text}: clone options given as "
                    "params; read as meta (Pacemaker reads them there); write meta instead of params"
                )
                _extend_unique(meta, pairs, "meta ")
            else:
                raise _StatementError(
                    tokens[i].line, f"unexpected {tokens[i].text!r}; a clone clones one resource; {usage}"
                )
        values: list[tuple[str, str]] = [(k.text, v) for k, v in meta]
        names = {k for k, _ in values}
        renamed = []
        for old, new in (("master-max", "promoted-max"), ("master-node-max", "promoted-node-max")):
            if old in names:
                if new in names:
                    raise _StatementError(tokens[1].line, f"both {old} and {new} are set; keep {new}")
                values = [(new if k == old else k, v) for k, v in values]
                renamed.append(f"{old} as {new}")
        if legacy:
            if "promotable" in names and not _is_true_word(dict(values)["promotable"]):
                raise _StatementError(tokens[1].line, "ms with promotable=false; write clone instead")
            if "promotable" not in names:
                values.append(("promotable", "true"))
        if legacy or renamed:
            spelled = " ".join(f"{k}={quote_value(v)}" for k, v in values)
            read = f" (reading {', '.join(renamed)})" if renamed else ""
            self.warnings.append(
                f"{self.path}:{tokens[0].line}: {keyword} {tokens[1].text}: the Pacemaker 1 form{read}; "
                f"write clone {tokens[1].text} {tokens[2].text} meta {spelled}"
            )
        self.lines[f"clone {tokens[1].text}"] = tokens[1].line
        self.clones.append(Clone(tokens[1].text, tokens[2].text, tuple(values)))

    # -- properties, defaults, nodes, fencing ---------------------------------------------------

    def on_property(self, tokens: list[Token]) -> None:
        self._name_values(tokens, self.properties, "property", per_key=True)

    def on_rsc_defaults(self, tokens: list[Token]) -> None:
        self._name_values(tokens, self.rsc_defaults, "rsc_defaults", per_key=False)

    def on_op_defaults(self, tokens: list[Token]) -> None:
        self._name_values(tokens, self.op_defaults, "op_defaults", per_key=False)

    def _name_values(self, tokens: list[Token], into: dict[str, str], kind: str, per_key: bool) -> None:
        rest = tokens[1:]
        if rest and rest[0].text.endswith(":") and "=" not in rest[0].text and not rest[0].quoted:
            rest = rest[1:]  # the attribute-set id, e.g. cib-bootstrap-options:; we keep one set
        if not rest:
            raise _StatementError(tokens[0].line, f"sets nothing; write {kind} NAME=VALUE …")
        pairs, end = _pairs_after(rest, 0, ())
        assert end == len(rest)
        for key, value in pairs:
            if key.text in into:
                raise _StatementError(key.line, f"{key.text} is already set; keep one {key.text}=…")
            into[key.text] = value
            self.lines[f"{kind} {key.text}" if per_key else kind] = key.line

    def on_node(self, tokens: list[Token]) -> None:
        usage = "write node NAME [attributes k=v …] or node ID: NAME"
        rest = tokens[1:]
        if rest and re.fullmatch(r"\d+:", rest[0].text):
            rest = rest[1:]  # the numeric node id of `node 1: node1`; nodes are known by name here
        if not rest:
            raise _StatementError(tokens[0].line, usage)
        name_token = rest[0]
        base, _, node_type = name_token.text.partition(":")
        if node_type in ("remote", "guest"):
            raise _StatementError(name_token.line, MISSING["remote"].message(f"node type {node_type}"))
        if node_type and node_type not in ("normal", "member"):
            raise _StatementError(
                name_token.line, f"node type {node_type!r} is not supported; drop :{node_type}"
            )
        name = _node_name(Token(base, name_token.line))
        attributes: list[tuple[Token, str]] = []
        i = 1
        while i < len(rest):
            if rest[i].is_word("attributes"):
                pairs, i = _pairs_after(rest, i + 1, ("attributes", "utilization"))
                _extend_unique(attributes, pairs, "attribute ")
            elif rest[i].is_word("utilization"):
                _, i = _pairs_after(rest, i + 1, ("attributes", "utilization"))
                self.utilization.append((f"node {base.lower()}", rest[0].line))
            else:
                raise _StatementError(rest[i].line, f"unexpected {rest[i].text!r}; {usage}")
        if name in self.nodes:
            raise _StatementError(name_token.line, f"node {name} is already defined; merge the two lines")
        self.lines[f"node {name}"] = name_token.line
        self.nodes[name] = tuple((k.text, v) for k, v in attributes)

    def on_fencing_topology(self, tokens: list[Token]) -> None:
        usage = "write fencing_topology NODE: DEV[,DEV…] [DEV …] [NODE: …], e.g. fencing_topology node1: ipmi1 pdu1,pdu2"
        target: str | None = None
        next_index: dict[str, int] = {}
        for level in self.fencing_levels:
            next_index[level.target] = max(next_index.get(level.target, 1), level.index + 1)
        for token in tokens[1:]:
            if token.text.endswith(":") and not token.quoted:
                target = _node_name(Token(token.text[:-1], token.line))
                self.lines.setdefault(f"fencing_topology {target}", token.line)
                continue
            if target is None:
                raise _StatementError(token.line, f"level {token.text!r} has no target node; {usage}")
            if "=" in token.text or ":" in token.text:
                raise _StatementError(token.line, f"{token.text!r}: only node targets are supported; {usage}")
            devices = tuple(token.text.split(","))
            if not all(devices):
                raise _StatementError(token.line, f"{token.text!r} has an empty device name; {usage}")
            index = next_index.get(target, 1)
            next_index[target] = index + 1
            self.fencing_levels.append(FencingLevel(target, index, devices))
        if target is None:
            raise _StatementError(tokens[0].line, usage)


_HANDLERS: Final[dict[str, Callable[[_Parser, list[Token]], None]]] = {
    "primitive": _Parser.on_primitive,
    "group": _Parser.on_group,
    "location": _Parser.on_location,
    "colocation": _Parser.on_colocation,
    "collocation": _Parser.on_colocation,
    "order": _Parser.on_order,
    "property": _Parser.on_property,
    "rsc_defaults": _Parser.on_rsc_defaults,
    "op_defaults": _Parser.on_op_defaults,
    "node": _Parser.on_node,
    "fencing_topology": _Parser.on_fencing_topology,
    "clone": _Parser.on_clone,
    "ms": _Parser.on_ms,
    "master": _Parser.on_ms,
}
_SECTION_WORDS: Final = ("params", "op", "meta", "utilization", "args")


class _StatementError(Exception):
    """One problem that ends the parsing of one statement; ``line`` is where it was seen."""

    def __init__(self, line: int, what: str) -> None:
        super().__init__(what)
        self.line = line


def _head(tokens: list[Token]) -> str:
    return " ".join(t.text for t in tokens[:2])


def _agent(token: Token) -> tuple[str, str | None, str]:
    parts = token.text.split(":")
    expected = (
        f"expected CLASS:PROVIDER:TYPE, CLASS:TYPE or a bare TYPE; CLASS is one of {', '.join(AGENT_CLASSES)}"
    )
    if len(parts) == 1:
        return "ocf", "heartbeat", parts[0]
    agent_class = parts[0]
    if agent_class in ("systemd", "service", "upstart", "nagios"):
        raise _StatementError(
            token.line, f"agent class {agent_class} is not supported; use lsb:NAME for init scripts"
        )
    if agent_class not in AGENT_CLASSES or not all(parts):
        raise _StatementError(token.line, f"agent {token.text!r} is malformed; {expected}")
    if agent_class == "ocf":
        if len(parts) != 3:
            raise _StatementError(
                token.line, f"ocf agent {token.text!r} needs a provider; write ocf:heartbeat:{parts[-1]}"
            )
        return "ocf", parts[1], parts[2]
    if len(parts) != 2:
        raise _StatementError(
            token.line, f"a {agent_class} agent has no provider; write {agent_class}:{parts[-1]}"
        )
    return agent_class, None, parts[1]


def _pairs_after(
    tokens: list[Token], start: int, stop_words: tuple[str, ...]
) -> tuple[list[tuple[Token, str]], int]:
    """``k=v`` tokens from ``start`` up to the next keyword; returns them and the index after."""
    pairs: list[tuple[Token, str]] = []
    i = start
    while i < len(tokens) and not tokens[i].is_word(*stop_words):
        token = tokens[i]
        key, equals, value = token.text.partition("=")
        if not equals or not key:
            raise _StatementError(
                token.line, f'{token.text!r} is not NAME=VALUE; quote values with blanks: k="a b"'
            )
        pairs.append((Token(key, token.line), value))
        i += 1
    return pairs, i


def _extend_unique(into: list[tuple[Token, str]], pairs: Iterable[tuple[Token, str]], what: str) -> None:
    seen = {key.text for key, _ in into}
    for key, value in pairs:
        if key.text in seen:
            raise _StatementError(key.line, f"{what}{key.text} is given twice; keep one")
        seen.add(key.text)
        into.append((key, value))


def _op(name: Token, pairs: list[tuple[Token, str]]) -> Op:
    if name.text not in OP_NAMES:
        guess = difflib.get_close_matches(name.text, OP_NAMES, n=1)
        hint = f"; did you mean {guess[0]}?" if guess else ""
        raise _StatementError(
            name.line, f"op {name.text!r} is unknown; expected one of {', '.join(OP_NAMES)}{hint}"
        )
    values: dict[str, str] = {}
    for key, value in pairs:
        attribute = "OCF_CHECK_LEVEL" if key.text == "depth" else key.text
        if attribute not in _OP_ATTRIBUTES:
            accepted = ", ".join(_OP_ATTRIBUTES)
            raise _StatementError(
                key.line, f"op {name.text}: {key.text} is not supported; accepted: {accepted}"
            )
        if attribute in values:
            raise _StatementError(key.line, f"op {name.text}: {key.text} is given twice; keep one")
        values[attribute] = value
    interval_ms = _time(name, "interval", values.get("interval", "0"))
    timeout_ms = _time(name, "timeout", values["timeout"]) if "timeout" in values else 0
    if "timeout" in values and timeout_ms == 0:
        raise _StatementError(
            name.line, f"op {name.text}: timeout must be more than 0; give e.g. timeout=20s"
        )
    depth_text = values.get("OCF_CHECK_LEVEL", "0")
    if not is_number(depth_text):
        raise _StatementError(
            name.line, f"op {name.text}: OCF_CHECK_LEVEL={depth_text!r}; expected 0, 10, 20 …"
        )
    role = values.get("role")
    if role is not None:
        role = canonical_role(role)[0] or role  # an unknown word is kept: check() names it
    return Op(name.text, interval_ms, timeout_ms, int(depth_text), values.get("on-fail"), role)


def _time(name: Token, attribute: str, value: str) -> int:
    try:
        return parse_time_ms(value)
    except ValueError:
        raise _StatementError(
            name.line, f"op {name.text}: {attribute}={value!r}; expected {TIME_HINT}"
        ) from None


def _score(token: Token) -> int:
    text = token.text.removesuffix(":")
    try:
        return parse_score(text)
    except ValueError:
        raise _StatementError(
            token.line, f"score {text!r}; expected an integer, inf or -inf, then a colon"
        ) from None


def _order_kind(token: Token) -> str:
    text = token.text.removesuffix(":")
    for kind in ORDER_KINDS:
        if text.lower() == kind.lower():
            return kind
    try:
        score = parse_score(text)
    except ValueError:
        raise _StatementError(
            token.line, f"order kind {text!r}; expected Mandatory, Optional, Serialize or a score (inf, 0)"
        ) from None
    if score < 0:
        raise _StatementError(
            token.line, f"order score {text} is negative; expected inf (Mandatory) or 0 (Optional)"
        )
    return "Mandatory" if score > 0 else "Optional"


def _split_score_colon(tokens: list[Token]) -> list[Token]:
    """``100:node1`` as one word becomes ``100:`` and ``node1``."""
    if len(tokens) == 1 and ":" in tokens[0].text and not tokens[0].text.endswith(":"):
        score, _, node = tokens[0].text.partition(":")
        return [Token(score + ":", tokens[0].line), Token(node, tokens[0].line)]
    return tokens


def _node_name(token: Token) -> str:
    if not _NODE_RE.match(token.text):
        raise _StatementError(
            token.line, f"{token.text!r} is not a node name; expected a host name such as node1"
        )
    return token.text.lower()


def _plain_rsc(token: Token) -> str:
    if ":" in token.text or "=" in token.text:
        raise _StatementError(
            token.line, f"{token.text!r}: expected a resource id without role or attributes"
        )
    return token.text


def _rsc_action(token: Token) -> tuple[str, str]:
    rsc, colon, action = token.text.partition(":")
    if not colon:
        return rsc, "start"
    if action not in ORDER_ACTIONS:
        raise _StatementError(
            token.line, f"{token.text!r}: action {action!r} is unknown; expected {', '.join(ORDER_ACTIONS)}"
        )
    if action in ("stop", "demote"):
        raise _StatementError(token.line, MISSING["order-actions"].message(token.text))
    return rsc, action


def _single_node_rule(rules: tuple[Rule, ...]) -> tuple[str, int] | None:
    """``(node, score)`` of a location whose one rule is ``SCORE: #uname eq NODE``, else None."""
    if len(rules) != 1 or rules[0].score_attribute is not None:
        return None
    expressions = rules[0].expressions
    if len(expressions) != 1 or expressions[0].type not in (None, "string"):
        return None
    node = uname_rule_node(expressions[0].attribute, expressions[0].operation, expressions[0].value or "")
    return None if node is None else (node, rules[0].score)


def _expressions(words: list[Token], usage: str) -> tuple[tuple[Expression, ...], list[str]]:
    """The expressions of one rule and the words (``and``/``or``) between them."""
    expressions: list[Expression] = []
    joins: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word.is_word("date") or word.text in ("date_spec", "date-spec", "in_range"):
            raise _StatementError(word.line, MISSING["date-rules"].message(word.text))
        if word.is_word("defined", "not_defined"):
            if i + 1 >= len(words):
                raise _StatementError(word.line, f"{word.text} needs an attribute name; {usage}")
            expressions.append(Expression(words[i + 1].text, word.text))
            i += 2
        elif i + 2 < len(words) and words[i + 1].text in ("eq", "ne", "lt", "gt", "lte", "gte"):
            kind, colon, value = words[i + 2].text.partition(":")
            if not colon or kind not in RULE_TYPES:
                kind, value = "", words[i + 2].text
            expressions.append(Expression(word.text, words[i + 1].text, value, kind or None))
            i += 3
        else:
            raise _StatementError(word.line, f"{word.text!r} does not start an expression; {usage}")
        if i < len(words):
            if not words[i].is_word("and", "or"):
                raise _StatementError(words[i].line, f"expected and or or, got {words[i].text!r}; {usage}")
            joins.append(words[i].text)
            i += 1
            if i == len(words):
                raise _StatementError(words[i - 1].line, f"{words[i - 1].text} ends the rule; {usage}")
    if not expressions:
        raise _StatementError(words[0].line if words else 0, f"a rule needs an expression; {usage}")
    return tuple(expressions), joins


def _refuse_sets(tokens: list[Token]) -> None:
    for token in tokens:
        if not token.quoted and (token.text[:1] in "([{" or token.text[-1:] in ")]}"):
            raise _StatementError(token.line, MISSING["resource-sets"].message(token.text))


def _is_true_word(value: str) -> bool:
    try:
        return parse_boolean(value)
    except ValueError:
        return True  # not a boolean at all: check() names it


def _boolean(token: Token, value: str) -> bool:
    try:
        return parse_boolean(value)
    except ValueError as exc:
        raise _StatementError(token.line, f"{token.text!r}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Rendering


def render_resources_crm(cfg: ClusterConfig) -> str:
    """``cfg`` in crm configure show style; ``ValueError`` if a value holds a line break."""
    out: list[str] = []
    for name, attributes in cfg.node_attributes:
        out.append(_statement(f"node {name}", [_section("attributes", attributes)] if attributes else []))
    for p in cfg.primitives:
        sections = []
        if p.args:
            sections.append(" ".join(["args", *(_quote_word(arg) for arg in p.args)]))
        if p.params:
            sections.append(_section("params", p.params))
        sections.extend(_render_op(op) for op in p.ops)
        if p.meta:
            sections.append(_section("meta", p.meta))
        out.append(_statement(f"primitive {p.id} {p.agent}", sections))
    for g in cfg.groups:
        out.append(
            _statement(f"group {g.id} {' '.join(g.members)}", [_section("meta", g.meta)] if g.meta else [])
        )
    for cl in cfg.clones:
        out.append(_statement(f"clone {cl.id} {cl.child}", [_section("meta", cl.meta)] if cl.meta else []))
    for lc in cfg.locations:
        role = f" role={lc.role}" if lc.role is not None else ""
        if lc.rules:
            out.append(_statement(f"location {lc.id} {lc.rsc}{role}", [_render_rule(r) for r in lc.rules]))
        else:
            out.append(f"location {lc.id} {lc.rsc}{role} {format_score(lc.score)}: {lc.node}")
    for co in cfg.colocations:
        out.append(
            f"colocation {co.id} {format_score(co.score)}: {_with_role(co.rsc, co.rsc_role)} "
            f"{_with_role(co.with_rsc, co.with_rsc_role)}"
        )
    for od in cfg.orders:
        tail = "" if od.symmetrical else " symmetrical=false"
        first = od.first if od.first_action == "start" else f"{od.first}:{od.first_action}"
        then = od.then if od.then_action == "start" else f"{od.then}:{od.then_action}"
        out.append(f"order {od.id} {od.kind}: {first} {then}{tail}")
    if cfg.fencing_levels:
        targets: dict[str, list[FencingLevel]] = {}
        for level in cfg.fencing_levels:
            targets.setdefault(level.target, []).append(level)
        lines = [
            f"{target}: " + " ".join(",".join(lv.devices) for lv in sorted(levels, key=lambda lv: lv.index))
            for target, levels in targets.items()
        ]
        out.append(_statement("fencing_topology", lines))
    for keyword, set_id, pairs in (
        ("property", "cib-bootstrap-options", cfg.properties),
        ("rsc_defaults", "rsc-options", cfg.rsc_defaults),
        ("op_defaults", "op-options", cfg.op_defaults),
    ):
        if pairs:
            out.append(_statement(f"{keyword} {set_id}:", [_pair(k, v) for k, v in pairs]))
    return "".join(line + "\n" for line in out)


def _with_role(rsc: str, role: str | None) -> str:
    return rsc if role is None else f"{rsc}:{role}"


def _render_rule(rule: Rule) -> str:
    words = ["rule"]
    if rule.role is not None:
        words.append(f"$role={rule.role}")
    score = f"score-attribute={rule.score_attribute}" if rule.score_attribute else format_score(rule.score)
    words.append(f"{score}:")
    for n, expression in enumerate(rule.expressions):
        if n:
            words.append(rule.boolean_op)
        if expression.value is None:
            words += [expression.operation, expression.attribute]
        else:
            typed = f"{expression.type}:" if expression.type else ""
            words += [expression.attribute, expression.operation, quote_value(typed + expression.value)]
    return " ".join(words)


def _statement(head: str, sections: list[str]) -> str:
    return " \\\n\t".join([head, *sections])


def _section(keyword: str, pairs: Pairs) -> str:
    return " ".join([keyword, *(_pair(k, v) for k, v in pairs)])


def _render_op(op: Op) -> str:
    words = [f"op {op.name}", f"interval={format_time_ms(op.interval_ms)}"]
    if op.timeout_ms:
        words.append(f"timeout={format_time_ms(op.timeout_ms)}")
    if op.on_fail is not None:
        words.append(_pair("on-fail", op.on_fail))
    if op.role is not None:
        words.append(_pair("role", op.role))
    if op.depth:  # last: crmsh wants op attributes before instance attributes such as this one
        words.append(f"OCF_CHECK_LEVEL={op.depth}")
    return " ".join(words)


def _pair(key: str, value: str) -> str:
    return f"{key}={quote_value(value)}"


def _quote_word(word: str) -> str:
    """A positional argument: quoted also when it would read as a section keyword."""
    return f'"{word}"' if word in _SECTION_WORDS else quote_value(word)


def quote_value(value: str) -> str:
    """``value`` bare when that is safe, else in double quotes with ``\\`` and ``"`` escaped."""
    if any(char in value for char in "\n\r") or any(ord(char) < 32 and char != "\t" for char in value):
        raise ValueError(f"value {value!r} holds a control character; crm syntax cannot express it")
    if _BARE_RE.match(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
