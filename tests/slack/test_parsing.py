"""Unit tests of bot/slack/parsing.py: how the text of a slash command becomes tokens and arguments."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.services.errors import Invalid
from bot.slack.parsing import parse_args, parse_int, parse_user, tokenize, unescape

# --- tokenize -------------------------------------------------------------------------------------


def test_tokenize_splits_on_whitespace():
    assert tokenize("story  add\tTrain ranker\n") == ["story", "add", "Train", "ranker"]


def test_tokenize_empty_text_is_no_tokens():
    assert tokenize("") == []
    assert tokenize("   ") == []


def test_tokenize_double_quotes_group_words():
    assert tokenize('sprint start "Sprint 14" --goal "Ship v2"') == [
        "sprint",
        "start",
        "Sprint 14",
        "--goal",
        "Ship v2",
    ]


def test_tokenize_quotes_inside_a_word_join_it():
    assert tokenize('ready S-1 data_contract=n/a reason="internal data"') == [
        "ready",
        "S-1",
        "data_contract=n/a",
        "reason=internal data",
    ]


def test_tokenize_smart_quotes_group_words_like_straight_ones():
    # Slack clients (macOS, iOS) turn "…" into “…” as people type.
    assert tokenize("story add “Fix the ranker” --points 3") == [
        "story",
        "add",
        "Fix the ranker",
        "--points",
        "3",
    ]
    assert tokenize("--goal „Ship v2”") == ["--goal", "Ship v2"]


def test_tokenize_apostrophes_inside_words_do_not_quote():
    assert tokenize("story add Fix user's features, don't wait") == [
        "story",
        "add",
        "Fix",
        "user's",
        "features,",
        "don't",
        "wait",
    ]


def test_tokenize_typographic_apostrophe_is_kept():
    assert tokenize("Fix user’s features") == ["Fix", "user’s", "features"]


def test_tokenize_keeps_backslashes_and_hashes_literally():
    assert tokenize(r"story add Fix C:\data\x #42") == ["story", "add", "Fix", r"C:\data\x", "#42"]


def test_tokenize_empty_quotes_give_an_empty_token():
    assert tokenize('reason=""') == ["reason="]
    assert tokenize('a "" b') == ["a", "", "b"]


@pytest.mark.parametrize(
    "text", ['story add "Fix ranker', 'reason="why', "story add “Fix ranker", 'a "b" "c']
)
def test_tokenize_unclosed_quote_is_refused(text):
    with pytest.raises(Invalid, match="quote is not closed"):
        tokenize(text)


def _shlex_tokens(text: str) -> list[str]:
    """What the lexer that tokenize hands quoted text to makes of any text (the reference)."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split, lexer.quotes, lexer.escape, lexer.commenters = True, '"', "", ""
    return list(lexer)


@given(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=200)
    | st.lists(
        st.sampled_from([" ", "\t", "\n", "\r", "\xa0", "\u2003", "\x0b", "a", "--x", "'", "#", "\\"])
    ).map("".join)
)
def test_tokenize_without_quotes_splits_as_the_lexer_does(text):
    """Text with no double quote skips the lexer: same tokens, whatever the spaces (a no-break space
    or a vertical tab stays inside a token, as in the lexer)."""
    text = text.replace('"', "").translate(str.maketrans("", "", "\u201c\u201d\u201e"))
    assert tokenize(text) == _shlex_tokens(text)


# --- parse_args -----------------------------------------------------------------------------------


def test_parse_args_positionals_only():
    args = parse_args(["Train", "ranker"])
    assert args.positionals == ["Train", "ranker"]
    assert args.options == {} and args.pairs == {}


def test_parse_args_options_with_separate_and_inline_values():
    args = parse_args(["Foo", "--points", "3", "--type=eng"], options=("--points", "--type"))
    assert args.positionals == ["Foo"]
    assert args.option("--points") == "3"
    assert args.option("--type") == "eng"
    assert args.option("--owner") is None


def test_parse_args_option_value_may_be_negative_number():
    args = parse_args(["--points", "-3"], options=("--points",))
    assert args.option("--points") == "-3"


def test_parse_args_flags():
    args = parse_args(["--mine", "--not-ready"], flags=("--mine", "--not-ready", "--all"))
    assert args.flag("--mine") and args.flag("--not-ready")
    assert not args.flag("--all")
    # a flag is not an option with a value
    assert args.option("--mine") is None


def test_parse_args_options_and_flags_mixed_with_positionals():
    args = parse_args(
        ["S-1", "--force", "S-2", "--sprint", "Sprint 3"], options=("--sprint",), flags=("--force",)
    )
    assert args.positionals == ["S-1", "S-2"]
    assert args.flag("--force")
    assert args.option("--sprint") == "Sprint 3"


def test_parse_args_pairs_when_allowed():
    args = parse_args(["S-1", "data_available=s3://b/v2", "reason=a b"], pairs=True)
    assert args.positionals == ["S-1"]
    assert args.pairs == {"data_available": "s3://b/v2", "reason": "a b"}


def test_parse_args_pair_value_may_be_empty_or_contain_equals():
    args = parse_args(["k=", "q=a=b"], pairs=True)
    assert args.pairs == {"k": "", "q": "a=b"}


def test_parse_args_pairs_are_positionals_when_not_allowed():
    assert parse_args(["a=b"]).positionals == ["a=b"]


def test_parse_args_uppercase_key_is_not_a_pair():
    assert parse_args(["Data=x"], pairs=True).positionals == ["Data=x"]


def test_parse_args_unescapes_positionals_options_and_pairs():
    args = parse_args(
        ["a", "&lt;", "b", "&amp;", "c", "--goal", "x &gt; y", "k=&lt;v&gt;"], options=("--goal",), pairs=True
    )
    assert args.positionals == ["a", "<", "b", "&", "c"]
    assert args.option("--goal") == "x > y"
    assert args.pairs == {"k": "<v>"}


def test_parse_args_keeps_user_mentions_whole():
    args = parse_args(["S-1", "<@U02BOB|bob>", "--owner", "<@U03DAVE>"], options=("--owner",))
    assert args.positionals == ["S-1", "<@U02BOB|bob>"]
    assert args.option("--owner") == "<@U03DAVE>"


def test_parse_args_double_dash_alone_is_a_positional():
    assert parse_args(["a", "--", "b"]).positionals == ["a", "--", "b"]


def test_parse_args_unknown_option_names_it_and_lists_the_known_ones():
    with pytest.raises(Invalid) as err:
        parse_args(["Foo", "--colour", "red"], options=("--type", "--points"), flags=("--mine",))
    assert "Unknown option --colour" in err.value.message
    assert "--type, --points, --mine" in err.value.message
    assert err.value.field == "--colour"


def test_parse_args_unknown_option_where_none_are_taken():
    with pytest.raises(Invalid, match=r"Unknown option --x \(options here: none\)"):
        parse_args(["--x"])


def test_parse_args_missing_value_at_the_end():
    with pytest.raises(Invalid, match="--points needs a value") as err:
        parse_args(["Foo", "--points"], options=("--points",))
    assert err.value.field == "--points"


def test_parse_args_missing_value_before_another_option():
    with pytest.raises(Invalid, match="--owner needs a value"):
        parse_args(["Foo", "--owner", "--points", "3"], options=("--owner", "--points"))


def test_parse_args_option_given_twice():
    with pytest.raises(Invalid, match="--points is given twice") as err:
        parse_args(["--points", "3", "--points=4"], options=("--points",))
    assert err.value.field == "--points"


def test_parse_args_pair_given_twice():
    with pytest.raises(Invalid, match="data_available is given twice"):
        parse_args(["data_available=a", "data_available=b"], pairs=True)


# --- parse_user -----------------------------------------------------------------------------------


def test_parse_user_linked_mention_with_name():
    assert parse_user("<@U123|name>") == "U123"


def test_parse_user_linked_mention_without_name():
    assert parse_user("<@U123>") == "U123"


def test_parse_user_enterprise_grid_id():
    assert parse_user("<@W0123ABCD|carol>") == "W0123ABCD"


def test_parse_user_raw_id():
    assert parse_user("U0123ABCD") == "U0123ABCD"
    assert parse_user(" U01ALICE ") == "U01ALICE"


@pytest.mark.parametrize("token", ["@bob", "bob", "<@bob>", "<#C0123|general>", "u0123abcd", ""])
def test_parse_user_refuses_what_slack_did_not_link(token):
    with pytest.raises(Invalid, match="Mention them with @") as err:
        parse_user(token)
    assert err.value.field == "owner"


def test_parse_user_refusal_names_the_token():
    with pytest.raises(Invalid, match="'@bob'"):
        parse_user("@bob")


# --- parse_int ------------------------------------------------------------------------------------


def test_parse_int_accepts_whole_numbers():
    assert parse_int("3", option="--points") == 3
    assert parse_int(" 13 ", option="--points") == 13
    assert parse_int("-2", option="--points") == -2


@pytest.mark.parametrize("text", ["abc", "1.5", "3pt", "", "1e3", "1234567"])
def test_parse_int_refuses_other_text(text):
    with pytest.raises(Invalid, match="--points must be a whole number") as err:
        parse_int(text, option="--points")
    assert err.value.field == "--points"


# --- unescape -------------------------------------------------------------------------------------


def test_unescape_the_three_entities():
    assert unescape("a &lt; b &amp; c &gt; d") == "a < b & c > d"


def test_unescape_a_typed_entity_stays_what_was_typed():
    # a person typing "&lt;" literally arrives as "&amp;lt;": it must come back as "&lt;", not "<"
    assert unescape("&amp;lt;") == "&lt;"
    assert unescape("&amp;amp;") == "&amp;"


def test_unescape_typed_channel_mention_becomes_text():
    assert unescape("&lt;!channel&gt;") == "<!channel>"


def test_unescape_links_keep_the_url():
    assert unescape("<https://x|label>") == "https://x"
    assert unescape("see <https://x.y/z?a=1&amp;b=2|x.y/z> now") == "see https://x.y/z?a=1&b=2 now"
    assert unescape("<http://example.com>") == "http://example.com"
    assert unescape("<mailto:a@b.c|a@b.c>") == "mailto:a@b.c"


def test_unescape_leaves_plain_text_alone():
    assert unescape("Fix user's features") == "Fix user's features"
