"""Parsing the text of a slash command: tokens, --options, key=value pairs and user mentions."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from bot.services.errors import Invalid
from bot.text import shortened

_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"'})
_USER = re.compile(r"^<@([UW][A-Z0-9]{2,31})(?:\|[^>]*)?>$")  # the user column holds 32
_RAW_USER = re.compile(r"^[UW][A-Z0-9]{4,31}$")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|[^>]*)?>")
_PAIR = re.compile(r"^([a-z][a-z0-9_]*)=(.*)$", re.DOTALL)


def unescape(text: str) -> str:
    """Slack sends &, < and > in command text as entities; links arrive as <url|label>."""
    text = _LINK.sub(lambda m: m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


_SPACES = re.compile(r"[ \t\r\n]+")  # what shlex splits at


def tokenize(text: str) -> list[str]:
    text = text.translate(_SMART_QUOTES)
    if '"' not in text:
        # Most commands quote nothing, and then the lexer below only splits at its whitespace: the same
        # tokens, five to eight times faster (shlex reads a character at a time, in Python; timed on
        # `help`, `story list --not-ready` and a `story add` of ten words: 0.7 against 3.3 µs, 2.9
        # against 23 µs).
        return [token for token in _SPACES.split(text) if token]
    # Only double quotes group words: apostrophes are common in titles ("Fix user's features").
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split, lexer.quotes, lexer.escape, lexer.commenters = True, '"', "", ""
    try:
        return list(lexer)
    except ValueError:
        raise Invalid("A quote is not closed; put matching quotes around text with spaces.") from None


@dataclass
class Args:
    positionals: list[str] = field(default_factory=list)
    options: dict[str, str | bool] = field(default_factory=dict)
    pairs: dict[str, str] = field(default_factory=dict)

    def option(self, name: str) -> str | None:
        value = self.options.get(name)
        return value if isinstance(value, str) else None

    def flag(self, name: str) -> bool:
        return self.options.get(name) is True


def parse_args(
    tokens: list[str],
    *,
    options: tuple[str, ...] = (),
    flags: tuple[str, ...] = (),
    pairs: bool = False,
) -> Args:
    """Split tokens into positionals, `--option value`, `--flag` and (when allowed) `key=value`."""
    args = Args()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--") and len(token) > 2:
            name, eq, inline = token.partition("=")
            if name in flags and not eq:
                args.options[name] = True
            elif name in flags:
                raise Invalid(f"{name} takes no value.", field=name)
            elif name in options:
                if eq:
                    value = inline
                elif i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                    i += 1
                    value = tokens[i]
                else:
                    raise Invalid(f"{name} needs a value.", field=name)
                if name in args.options:
                    raise Invalid(f"{name} is given twice.", field=name)
                args.options[name] = unescape(value) if not _USER.match(value) else value
            else:
                known = ", ".join([*options, *flags]) or "none"
                raise Invalid(f"Unknown option {name} (options here: {known}).", field=name)
        elif pairs and (m := _PAIR.match(token)):
            key, value = m.group(1), m.group(2)
            if key in args.pairs:
                raise Invalid(f"{key} is given twice.", field=key)
            args.pairs[key] = unescape(value)
        else:
            args.positionals.append(token if _USER.match(token) else unescape(token))
        i += 1
    return args


def parse_user(token: str) -> str:
    """A Slack user id from a mention Slack has linked (<@U123|name>), or a raw id."""
    match = _USER.match(token.strip())
    if match:
        return match.group(1)
    if _RAW_USER.match(token.strip()):
        return token.strip()
    raise Invalid(
        f"I don't know a Slack user {shortened(token)!r}. Mention them with @ and pick the name Slack "
        "suggests.",
        field="owner",
    )


NA = "n/a"


def parse_waiver(text: str) -> str | None:
    """'n/a: reason' (or 'n/a - reason', 'n/a reason') → the reason; None for an ordinary answer."""
    head = text.strip()
    if head.lower().startswith(NA):
        rest = head[len(NA) :]
        if not rest or rest[0] in ":-–— ":
            return rest.lstrip(":-–— ").strip()
    return None


def parse_int(text: str, *, option: str) -> int:
    if not re.fullmatch(r"-?\d{1,6}", text.strip()):
        raise Invalid(f"{option} must be a whole number, not {text!r}.", field=option)
    return int(text)
