"""Hostile but honest input to the `dialer` command: one sentence and its exit status, never a
traceback, and nothing written by what was refused.

Campaign files that nest too deep, repeat a key, carry NUL bytes or terminal escapes, or are not
campaign files at all; names that look like rich markup or hold control characters, shown as
written; database URLs that cannot be used, refused without their password.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from campaigns.core import db
from campaigns.core import schema as t
from campaigns.core.yamlfile import MAX_DEPTH
from dialer_cli.main import app
from tests.conftest import BACKENDS
from tests.helpers import MINIMAL, apply_campaign
from tests.test_cli import dialer

runner = CliRunner()

VALID = 'name: "Spring Renewals"\nworkspace: acme\nlocale: US\nagent: agent_1\n'


def invoke(env: dict[str, str], *args: str):
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


def assert_one_sentence(result, *fragments: str, code: int = 2) -> str:
    """The command failed with `code` and said so in one `error:` line holding every fragment."""
    output = result.stdout + result.stderr
    assert result.exit_code == code, output
    assert "Traceback" not in output
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line and line.endswith("."), line
    for fragment in fragments:
        assert fragment in line, line
    return line


@pytest.fixture(scope="module", params=BACKENDS)
def shared_env(request, tmp_path_factory) -> Iterator[dict[str, str]]:
    """One migrated database per backend for the module's refusals: a refused file writes nothing,
    so every case can share it, and each checks that it is still empty."""
    home = tmp_path_factory.mktemp(f"hostile-{request.param}")
    if request.param == "sqlite":
        path = home / "dialer.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
        yield {"DIALER_DATABASE_URL": url, "DIALER_HOME": str(home)}
        return
    factory = request.getfixturevalue("postgres_factory")
    if factory is None:
        pytest.skip("PostgreSQL case: set DIALER_TEST_POSTGRES_URL")
    url = factory.migrated()
    yield {"DIALER_DATABASE_URL": url, "DIALER_HOME": str(home)}
    factory.drop(url)


def campaign_rows(env: dict[str, str]) -> int:
    engine = db.make_engine(env["DIALER_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return sum(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                       for table in (t.workspaces, t.campaigns, t.dispositions, t.dnc_lists))
    finally:
        engine.dispose()


# -- campaign files -----------------------------------------------------------------------------

@dataclass(frozen=True)
class BadFile:
    id: str
    content: bytes | None  # None: the case makes its own path (a directory, a missing file)
    says: tuple[str, ...]


def _text(text: str) -> bytes:
    return text.encode("utf-8")


def _chain(levels: int) -> str:
    """Aliases of aliases: shallow text, data `levels` deep."""
    return "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, levels))


def _laughs() -> str:
    """Nine levels of nine aliases each: 1 KB of text, 387 million items built."""
    lines = ["l0: &l0 [" + ",".join(["lol"] * 9) + "]"]
    lines += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return VALID + "\n".join(lines) + "\n"


BAD_FILES = [
    BadFile("deep-brackets", _text("name: " + "[" * 100_000), (f"nests deeper than {MAX_DEPTH} levels", "line 1")),
    BadFile("deep-alias-chain", _text(VALID + _chain(MAX_DEPTH + 5)), (f"nests deeper than {MAX_DEPTH} levels",)),
    BadFile("billion-laughs", _text(_laughs()), ("aliases (`*name`) expand it past",)),
    BadFile("recursive-alias", _text(VALID + "blocked_states: &s [*s]\n"), ("inside the anchor it names",)),
    BadFile("duplicate-key", _text(VALID + 'name: "Other"\n'), ("key `name` appears twice (lines 1 and 5)",)),
    BadFile("duplicate-nested-key", _text(VALID + "dialing:\n  call_ratio: 1.5\n  call_ratio: 3\n"),
            ("key `dialing.call_ratio` appears twice (lines 6 and 7)",)),
    BadFile("nul-in-name", _text(VALID.replace('"Spring Renewals"', '"Spring\\0Renewals"')),
            ("`name` (line 1) contains a NUL byte (U+0000)",)),
    BadFile("escape-in-title", _text(VALID + 'dispositions:\n  - title: "Sale\\e[31m"\n'),
            ("`dispositions[0].title` (line 6) contains the control character U+001B",)),
    BadFile("c1-in-agent", _text(VALID.replace("agent_1", '"agent\\x9b1"')), ("`agent`", "U+009B")),
    BadFile("surrogate-in-name", _text(VALID.replace('"Spring Renewals"', '"Spring \\ud800"')),
            ("`name` (line 1) contains the invalid character U+D800",)),
    BadFile("raw-escape-byte", _text(VALID.replace("agent_1", "agent\x1b[2J")), ("line 4 contains the control character U+001B",)),
    BadFile("line-break-in-name", _text(VALID.replace('"Spring Renewals"', "|\n  Spring\n  Renewals")),
            ("`name` (line 1) contains a line break",)),
    BadFile("nul-in-key", _text(VALID + '"dial\\0ing": {}\n'), ("a key at line 5 contains a NUL byte",)),
    BadFile("two-documents", _text(VALID + "---\n" + VALID), ("expected a single document in the stream but found another",)),
    BadFile("unclosed-bracket", _text("name: [unclosed\n"), ("is not valid YAML at line",)),
    BadFile("empty", b"", ("is empty",)),
    BadFile("comments-only", _text("# nothing yet\n"), ("is empty",)),
    BadFile("top-level-list", _text("- name: x\n- name: y\n"), ("got a list",)),
    BadFile("top-level-scalar", _text("Spring Renewals\n"), ("got a single value (str)",)),
    BadFile("latin-1", "name: Café\n".encode("latin-1"), ("is not UTF-8 text (byte 0xe9 at offset 9)",)),
    BadFile("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ("is not UTF-8 text",)),
    BadFile("too-large", _text(VALID + "# " + "x" * (1 << 20) + "\n"), ("is larger than 1 MiB",)),
    BadFile("long-value", _text(VALID.replace("agent_1", "a" * 500_000)), ("`agent` must have at most 200 characters",)),
    BadFile("directory", None, ("is a directory; name the campaign file itself",)),
    BadFile("missing", None, ("no such file",)),
]


@pytest.mark.parametrize("case", BAD_FILES, ids=[case.id for case in BAD_FILES])
def test_a_bad_campaign_file_is_one_sentence_and_writes_nothing(shared_env, tmp_path, case):
    path = tmp_path / "campaign.yaml"
    if case.id == "directory":
        path.mkdir()
    elif case.content is not None:
        path.write_bytes(case.content)
    line = assert_one_sentence(invoke(shared_env, "campaign", "apply", str(path)), str(path), *case.says)
    assert len(line) < 400  # a sentence, not the file quoted back
    # On PostgreSQL a NUL byte used to reach the INSERT: a DataError quoting the whole SQL.
    assert not any(word in line for word in ("INSERT", "DataError", "\x00", "\x1b")), line
    assert campaign_rows(shared_env) == 0


def test_deep_nesting_in_a_child_process_is_one_sentence(tmp_path):
    """The installed command, where a RecursionError would end the process with a traceback."""
    path = tmp_path / "deep.yaml"
    path.write_text("name: " + "[" * 100_000, encoding="utf-8")
    env = {"DIALER_HOME": str(tmp_path / "home"), "DIALER_DATABASE_URL": f"sqlite:///{tmp_path / 'd.sqlite3'}"}
    result = dialer(env, "campaign", "apply", str(path))  # the file is read before the database is opened
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"error: {path}: nests deeper than {MAX_DEPTH} levels (at line 1); "
                                     "these files nest a few levels only.")


def test_anchors_merge_keys_and_block_scalars_still_work(dialer_env, tmp_path):
    """What the loader refuses is the hostile part of YAML only: an anchor, a merge key whose keys
    the mapping overrides (not a duplicate), and a `|` name (its final line break stripped)."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: |\n  Spring Renewals\nworkspace: acme\nlocale: US\nagent: agent_1\n"
        "dispositions:\n"
        "  - &sale {title: Sale, qualified: true, contacted: true}\n"
        "  - {<<: *sale, title: No Sale, qualified: false}\n",
        encoding="utf-8",
    )
    applied = invoke(dialer_env, "campaign", "apply", str(path))
    assert applied.exit_code == 0, applied.stderr
    shown = json.loads(invoke(dialer_env, "campaign", "show", "acme/spring-renewals", "--json").stdout)
    assert shown["name"] == "Spring Renewals"
    assert [(d["title"], d["qualified"], d["contacted"]) for d in shown["dispositions"]] == [
        ("Sale", True, True), ("No Sale", False, True)]


# -- names shown as written ---------------------------------------------------------------------

MARKUP_NAMES = {"markup": "[/bold] x", "brackets": "Q1 [west] reminders", "emoji": "Leads :fire: [link=x]y"}


def test_names_that_look_like_markup_are_shown_as_written(dialer_env, engine):
    for slug, name in MARKUP_NAMES.items():
        apply_campaign(engine, {**MINIMAL, "name": name, "slug": slug})
    listed = invoke({**dialer_env, "COLUMNS": "200"}, "campaign", "list")
    assert listed.exit_code == 0, listed.stdout + listed.stderr
    for name in MARKUP_NAMES.values():
        assert name in listed.stdout
    for slug, name in MARKUP_NAMES.items():
        status = invoke(dialer_env, "campaign", "status", f"acme/{slug}")
        assert status.exit_code == 0, status.stdout + status.stderr
        assert status.stdout.splitlines()[0] == f"acme/{slug} — {name}"


def test_control_characters_already_stored_never_reach_the_terminal(dialer_env, engine):
    """Rows written before files were checked (or by other tools) may hold escapes: every view
    shows them as `\\x1b`, the JSON as `\\u001b`, and no raw control byte is printed."""
    name = "Evil \x1b]0;pwned\x07 \x1b[2J\x9b31m name"
    apply_campaign(engine, {**MINIMAL, "name": name, "slug": "evil",
                            "dispositions": [{"title": "Sale \x1b[5m"}]})
    for args in (("campaign", "list"), ("campaign", "status", "acme/evil")):
        result = invoke({**dialer_env, "COLUMNS": "200"}, *args)
        assert result.exit_code == 0, result.stdout + result.stderr
        assert not any(char in result.stdout for char in "\x1b\x07\x9b"), result.stdout
        assert "\\x1b]0;pwned\\x07" in result.stdout
    as_json = invoke(dialer_env, "campaign", "list", "--json")
    assert "\x9b" not in as_json.stdout and "\\u009b" in as_json.stdout
    assert json.loads(as_json.stdout)[0]["name"] == name
    shown = invoke(dialer_env, "campaign", "show", "acme/evil")
    assert shown.exit_code == 0 and "\x1b" not in shown.stdout


def test_a_control_character_in_an_argument_is_escaped_in_the_error(dialer_env):
    result = invoke(dialer_env, "campaign", "status", "nope\x1b[31m[/bold]")
    line = assert_one_sentence(result, "No campaign `nope\\x1b[31m[/bold]`")
    assert "\x1b" not in line


# -- database URLs and the environment ----------------------------------------------------------

BAD_URLS = [
    ("no-scheme", "postgres:s3cret@db.example/dialer", ("is not a database URL", "`***@db.example/dialer`")),
    ("bad-port", "postgresql://ops:s3cret@127.0.0.1:five/dialer", ("port that is not a number", "ops:***@")),
    ("port-out-of-range", "postgresql://ops:s3cret@127.0.0.1:99999/dialer", ("has port 99999",)),
    ("unclosed-ipv6", "postgresql://ops:s3cret@[::1/dialer", ("closing bracket",)),
    ("password-with-at", "postgresql://ops:s3@cret@127.0.0.1:x/dialer", ("`postgresql://ops:***@127.0.0.1:x/dialer`",)),
    ("unknown-backend", "mysql://ops:s3cret@127.0.0.1/dialer", ("uses `mysql`",)),
    ("unknown-driver", "postgresql+asyncpg://ops:s3cret@127.0.0.1/dialer", ("the driver `postgresql+asyncpg`",)),
    ("sqlite-driver", "sqlite+nope:///x.sqlite3", ("the driver `sqlite+nope`",)),
    ("unknown-option", "postgresql://ops:s3cret@127.0.0.1/dialer?colour=blue", ('invalid connection option "colour"',)),
    ("password-option", "postgresql://ops@127.0.0.1/dialer?password=s3cret&sslmode=sometimes",
     ("Cannot reach the database", "password=***", 'invalid sslmode value: "sometimes"')),
]


@pytest.mark.parametrize("url,says", [(url, says) for _, url, says in BAD_URLS], ids=[i for i, _, _ in BAD_URLS])
def test_a_bad_database_url_is_one_sentence_without_its_password(tmp_path, url, says):
    env = {"DIALER_DATABASE_URL": url, "DIALER_HOME": str(tmp_path)}
    for command in (("init",), ("campaign", "list")):
        line = assert_one_sentence(invoke(env, *command), *says)
        assert "s3cret" not in line and "s3@cr" not in line


def test_a_bad_database_url_in_a_child_process(tmp_path):
    result = dialer({"DIALER_DATABASE_URL": "postgresql://ops:s3cret@localhost:abc/db", "DIALER_HOME": str(tmp_path)},
                    "campaign", "list")
    assert result.returncode == 2 and "Traceback" not in result.stderr and "s3cret" not in result.stderr
    assert result.stderr.startswith("error: DIALER_DATABASE_URL `postgresql://ops:***@localhost:abc/db`")


def test_a_home_that_cannot_be_used_is_one_sentence(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    sqlite = {"DIALER_DATABASE_URL": ""}  # the embedded default, under DIALER_HOME
    assert_one_sentence(invoke({**sqlite, "DIALER_HOME": "~no-such-user-here/dialer"}, "init"),
                        "DIALER_HOME `~no-such-user-here/dialer`", "absolute path")
    assert_one_sentence(invoke({**sqlite, "DIALER_HOME": str(a_file)}, "init"),
                        f"cannot create the folder {a_file} for the SQLite database")


# -- other files and flags ------------------------------------------------------------------------

def test_directories_given_as_files_and_bad_flags(dialer_env, engine, tmp_path):
    apply_campaign(engine, {**MINIMAL, "slug": "spring"})
    folder = tmp_path / "prospects.csv"
    folder.mkdir()
    assert_one_sentence(invoke(dialer_env, "list", "upload", "acme/spring", str(folder)),
                        "is a directory; name the prospect list itself")
    assert_one_sentence(invoke(dialer_env, "dnc", "import", "acme/internal", str(folder)),
                        "is a directory; name the file of numbers itself")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    assert_one_sentence(invoke(dialer_env, "report", "acme/spring", "--out", str(a_file)),
                        f"--out {a_file}: cannot write", "the report is in the bucket at")
    deep = tmp_path / "profile.yaml"
    deep.write_text("default: " + "{a: " * 1000, encoding="utf-8")
    assert_one_sentence(invoke(dialer_env, "simulator", "--profile", str(deep)), "nests deeper than")
    assert_one_sentence(invoke(dialer_env, "simulator", "--start", "soon"), "--start 'soon' is not an ISO-8601 instant")
    for args in (("simulator", "--port", "70000"), ("daemon", "--metrics-port", "-1"), ("campaign", "list", "--bogus")):
        result = invoke(dialer_env, *args)
        assert result.exit_code == 2 and "Traceback" not in result.stdout + result.stderr, args


def test_a_hostile_upload_sidecar_is_refused_with_its_key(tmp_path):
    from campaigns.core.errors import DialerError
    from campaigns.ingestion.bucket import Bucket
    from campaigns.ingestion.inbox import parse_inbox_key, read_sidecar

    bucket = Bucket(str(tmp_path))
    target = parse_inbox_key("inbox/acme/spring/list.csv")
    for content, says in (("priority: " + "[" * 50_000, "nests deeper than"),
                          ("priority: 10\npriority: 90\n", "key `priority` appears twice (lines 1 and 2)")):
        bucket.write_text(target.sidecar_keys()[0], content)
        with pytest.raises(DialerError) as refused:
            read_sidecar(bucket, target)
        assert str(refused.value).startswith("inbox/acme/spring/list.csv.yaml: ") and says in str(refused.value)


def test_the_json_output_escapes_what_json_leaves_raw(capsys):
    from dialer_cli.common import print_json

    print_json({"name": "a\x1b\x9b\x7fb\ud800", "ok": "Zoë [x]"})
    printed = capsys.readouterr().out
    assert not any(char in printed for char in "\x1b\x9b\x7f")
    assert json.loads(printed) == {"name": "a\x1b\x9b\x7fb\ud800", "ok": "Zoë [x]"}


def test_the_daemons_text_log_shows_control_characters_as_escapes():
    import logging

    from dialer_daemon.logs import TextFormatter

    record = logging.LogRecord("dialer", logging.INFO, "", 0, "campaign %s started", ("\x1b[31mQ1\nforged",), None)
    line = TextFormatter().format(record)
    assert line.endswith("campaign \\x1b[31mQ1\\x0aforged started") and "\x1b" not in line and "\n" not in line
