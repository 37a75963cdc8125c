"""Containerfiles: Docker's syntax, read as Docker reads it (the same table
is checked against a real Docker Engine in tests/e2e/test_containerfile_docker.py),
the mapping onto a Spec, and clear errors with line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from urunix.errors import NotSupportedYet, SpecError
from urunix.loaders import FORMATS, detect, load
from urunix.loaders.containerfile import DEFAULT_PATH, parse, parse_words, process_word
from urunix.spec import FileEntry, Rootfs

BASE = "FROM scratch\nCOPY f /f\n"

# (id, Containerfile text, what Docker's image config holds: labels, env
# (without Docker's default PATH), cmd, entrypoint). "{BASE}" is FROM
# scratch plus one COPY (Docker's classic builder wants a layer).
CASES = [
    (
        "several-pairs-and-quotes",
        "{BASE}LABEL a=1 b=\"two  words\" c='three   spaces' d=plain\n",
        {"labels": {"a": "1", "b": "two  words", "c": "three   spaces", "d": "plain"}},
    ),
    (
        "legacy-key-value-form",
        "{BASE}LABEL legacy   value with   spaces  \nENV OLD  hello   world\n",
        {"labels": {"legacy": "value with   spaces"}, "env": {"OLD": "hello   world"}},
    ),
    (
        "the-word-LABEL-inside-a-value",
        '{BASE}LABEL x="LABEL inside LABEL" LABEL=LABEL\n',
        {"labels": {"x": "LABEL inside LABEL", "LABEL": "LABEL"}},
    ),
    (
        "double-quote-escapes",
        '{BASE}LABEL q="say \\"hi\\" \\\\ and \\$HOME and \\n and \\t"\n',
        {"labels": {"q": 'say "hi" \\ and $HOME and \\n and \\t'}},
    ),
    (
        "single-quotes-are-literal",
        "{BASE}LABEL s='no \\\"escape\\\" $HOME \\\\ here'\n",
        {"labels": {"s": 'no \\"escape\\" $HOME \\\\ here'}},
    ),
    ("unquoted-backslash-escapes-the-next-char", '{BASE}LABEL u=a\\ b\\"c\\\\d\\$e\n', {"labels": {"u": 'a b"c\\d$e'}}),
    (
        "mixed-quotes-in-one-word-and-quoted-keys",
        '{BASE}LABEL mix="a"\'b\'c "key with space"=v \'k2\'="x=y" eq=a=b=c\n',
        {"labels": {"mix": "abc", "key with space": "v", "k2": "x=y", "eq": "a=b=c"}},
    ),
    (
        "continuations-keep-leading-whitespace",
        '{BASE}LABEL c1=one \\\n      c2="two \\\n  halves" \\\n\tc3=three\n',
        {"labels": {"c1": "one", "c2": "two   halves", "c3": "three"}},
    ),
    (
        "comments-and-empty-lines-inside-a-continuation",
        "{BASE}LABEL k1=v1 \\\n# a comment \\\n  # an indented comment\n\n   \n  k2=v2\n# a comment after\nLABEL k3=v3\n",
        {"labels": {"k1": "v1", "k2": "v2", "k3": "v3"}},
    ),
    ("spaces-after-the-continuation-backslash", "{BASE}LABEL t1=x \\   \n  t2=y\n", {"labels": {"t1": "x", "t2": "y"}}),
    (
        "case-insensitive-instructions-and-tabs",
        'from scratch\ncOpY f /f\nlabel\tlower=case\nEnv\tE1=x\ncmd ["a", "b"]\nEntryPoint ["/e"]\n',
        {"labels": {"lower": "case"}, "env": {"E1": "x"}, "cmd": ["a", "b"], "entrypoint": ["/e"]},
    ),
    (
        "syntax-and-escape-directives",
        "#syntax=harbor.nbfc.io/nubificus/bunny:latest\n# escape=`\nFROM scratch\nCOPY f /f\n"
        'LABEL win="C:\\path\\to\\" `\n  next=line tick=a``b\n',
        {"labels": {"win": "C:\\path\\to\\", "next": "line", "tick": "a`b"}},
    ),
    (
        "a-directive-after-a-comment-is-a-comment",
        "# hello\n# escape=`\nFROM scratch\nCOPY f /f\nLABEL back=a\\\\b\n",
        {"labels": {"back": "a\\b"}},
    ),
    (
        "env-substitution",
        '{BASE}ENV A=1 B="x y"\nENV C=$A D=${B}-$A E="$A" F=\'$A\' A=2 G=$A\n'
        "LABEL fromenv=$C-${D} dflt=${UNSET:-fallback} alt=${A:+set} alt2=${UNSET:+set} lit=\\$A\n",
        {
            "labels": {"fromenv": "1-x y-1", "dflt": "fallback", "alt": "set", "alt2": "", "lit": "$A"},
            "env": {"B": "x y", "C": "1", "D": "x y-1", "E": "1", "F": "$A", "A": "2", "G": "1"},
        },
    ),
    (
        "arg-defaults-and-env-wins-over-arg",
        'ARG BASE=scratch\nFROM $BASE\nCOPY f /f\nARG V=1.2 W="a b"\nARG BASE\nENV W=env\nLABEL version=$V w="$W" base=$BASE\n',
        {"labels": {"version": "1.2", "w": "env", "base": "scratch"}, "env": {"W": "env"}},
    ),
    (
        "a-dollar-not-followed-by-a-name-is-literal",
        '{BASE}LABEL price="5 $ only" trailing=abc$ brace="{$}"\n',
        {"labels": {"price": "5 $ only", "trailing": "abc$", "brace": "{$}"}},
    ),
    (
        "empty-values-and-overrides",
        '{BASE}LABEL empty="" e2= over=1\nLABEL over=2\n',
        {"labels": {"empty": "", "e2": "", "over": "2"}},
    ),
    (
        "json-cmd-is-json",
        '{BASE}CMD ["redis-server", "/conf/redis.conf", "a\\"b", "\\u00fc", "two words", ""]\nENTRYPOINT   [ "/bin/x" ]   \n',
        {"cmd": ["redis-server", "/conf/redis.conf", 'a"b', "\u00fc", "two words", ""], "entrypoint": ["/bin/x"]},
    ),
    (
        "seed-004-unbalanced-single-quote-inside-double-quotes",
        '{BASE}LABEL "com.urunc.unikernel.cmdline"="/urunit /usr/sbin/nginx -g \'daemon off;error_log stderr debug;"\n',
        {"labels": {"com.urunc.unikernel.cmdline": "/urunit /usr/sbin/nginx -g 'daemon off;error_log stderr debug;"}},
    ),
    (
        "crlf-line-endings",
        'FROM scratch\r\nCOPY f /f\r\nLABEL a=1 \\\r\n  b="2"\r\nENV E=x\r\n',
        {"labels": {"a": "1", "b": "2"}, "env": {"E": "x"}},
    ),
    (
        "legacy-forms-with-quotes-and-equals",
        '{BASE}ENV Q "quoted  value"\nLABEL key value=with=eq  "and quotes"\n',
        {"labels": {"key": "value=with=eq  and quotes"}, "env": {"Q": "quoted  value"}},
    ),
    (
        "a-continuation-inside-quotes-and-at-the-end-of-the-file",
        '{BASE}LABEL a="x\\\ny"\nENV K=k\nLABEL ${K}ey=$K \\',
        {"labels": {"a": "xy", "key": "k"}, "env": {"K": "k"}},
    ),
    (
        "real-tabs-and-spaces-inside-quotes",
        "{BASE}LABEL t=\"a\tb  c\" u='\t'  \t v=w\t\n",
        {"labels": {"t": "a\tb  c", "u": "\t", "v": "w"}},
    ),
    ("json-escapes", '{BASE}CMD ["a\\\\b", "c\\/d", "e\\tf", "$HOME"]\n', {"cmd": ["a\\b", "c/d", "e\tf", "$HOME"]}),
    ("empty-json-arrays", "{BASE}ENTRYPOINT []\nCMD []\n", {"cmd": [], "entrypoint": None}),
    (
        "unicode-values",
        '{BASE}LABEL emoji="\u2603 \u00e9t\u00e9" \u00fcber=ja\n',
        {"labels": {"emoji": "\u2603 \u00e9t\u00e9", "\u00fcber": "ja"}},
    ),
]


def write(tmp_path: Path, text: str, name: str = "Containerfile", files: tuple[str, ...] = ("f",)) -> Path:
    for f in files:
        p = tmp_path / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"\x7fELF" + f.encode())
    path = tmp_path / name
    path.write_bytes(text.replace("{BASE}", BASE).encode())
    return path


def config_of(spec) -> dict:
    """A Spec as the image config Docker would write (labels, env, cmd, entrypoint)."""
    labels = {f"com.urunc.unikernel.{k}": v for k, v in spec.annotations.items()}
    labels.update(spec.labels)
    env = {k: v for k, v in spec.env.items() if (k, v) != ("PATH", DEFAULT_PATH)}  # Docker's too
    return {"labels": labels, "env": env, "cmd": spec.cmd, "entrypoint": spec.entrypoint}


def expected(want: dict) -> dict:
    return {
        "labels": want.get("labels", {}),
        "env": want.get("env", {}),
        "cmd": want.get("cmd"),
        "entrypoint": want.get("entrypoint"),
    }


@pytest.mark.parametrize("text,want", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_syntax_as_docker_reads_it(tmp_path, text, want):
    spec = load(write(tmp_path, text))
    assert config_of(spec) == expected(want)


# -- the pieces --------------------------------------------------------------


def test_continuation_lines_and_line_numbers():
    p = parse("# c\n\nFROM scratch\nLABEL a=1 \\\n\n  # x\n b=2\nCOPY a \\\n  /a\n")
    assert [(i.cmd, i.line, i.end_line) for i in p.instructions] == [("from", 3, 3), ("label", 4, 7), ("copy", 8, 9)]
    assert p.instructions[1].rest == "a=1  b=2"
    assert p.instructions[2].rest == "a   /a"


def test_flags_are_split_off():
    p = parse('COPY --chmod=0755 --chown="0:0" --link a b\n')
    ins = p.instructions[0]
    assert ins.flags == ["--chmod=0755", "--chown=0:0", "--link"] and ins.rest == "a b"


def test_parse_words_keeps_quotes():
    assert parse_words("a=\"b c\" 'd e'=f g\\ h") == ['a="b c"', "'d e'=f", "g\\ h"]


@pytest.mark.parametrize(
    "word,env,out",
    [
        ("${A}", {"A": "x"}, "x"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A+s}", {"A": ""}, "s"),
        ("${A:+s}", {"A": ""}, ""),
        ("${A:-$B}", {"A": "a"}, "a"),  # the default is not needed, so $B may be unset
        ("\"$A\"'$A'", {"A": "x"}, "x$A"),
        ("a$", {}, "a$"),
        ("$ b", {}, "$ b"),
    ],
)
def test_process_word(word, env, out):
    assert process_word(word, env) == out


# -- the mapping onto a Spec ------------------------------------------------------


def test_mapping(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "x").write_text("x")
    text = (
        "FROM scratch\n"
        "COPY kernel /unikernel/kernel\n"
        "COPY a b /etc/conf/\n"
        "COPY dir /data\n"
        "WORKDIR /srv\n"
        "COPY c .\n"
        'COPY ["d", "rel/"]\n'
        "COPY /e /unikernel\n"
        "LABEL com.urunc.unikernel.binary=/unikernel/kernel org.example.team=os\n"
        "ENV K=V\n"
        'CMD ["nginx", "-c", "/nginx/conf/nginx.conf"]\n'
    )
    spec = load(write(tmp_path, text, files=("kernel", "a", "b", "c", "d", "e")))
    assert spec.format == "containerfile" and spec.name is None and spec.tag is None
    assert [(f.source, f.target, f.field) for f in spec.files] == [
        ("kernel", "/unikernel/kernel", "COPY kernel"),
        ("a", "/etc/conf/a", "COPY a"),
        ("b", "/etc/conf/b", "COPY b"),
        ("dir", "/data", "COPY dir"),  # a directory's contents go to the destination
        ("c", "/srv/c", "COPY c"),
        ("d", "/srv/rel/d", "COPY d"),
        ("/e", "/unikernel/e", "COPY /e"),  # /unikernel exists by now: into it, as Docker
    ]
    assert spec.files[0].path == tmp_path / "kernel" and spec.files[6].path == tmp_path / "e"
    assert spec.annotations == {"binary": "/unikernel/kernel"}
    assert spec.labels == {"org.example.team": "os"}
    assert spec.env == {"PATH": DEFAULT_PATH, "K": "V"}  # Docker gives FROM scratch a PATH
    assert spec.cmd == ["nginx", "-c", "/nginx/conf/nginx.conf"] and spec.entrypoint is None
    assert spec.rootfs is None
    assert spec.lines["annotations.binary"] == 9 and spec.lines["labels.org.example.team"] == 9
    assert spec.lines["COPY kernel"] == 2 and spec.lines["cmd"] == 11 and spec.lines["env.K"] == 10
    assert spec.where("annotations.binary")["line"] == 9
    assert spec.workdir == "/srv"  # WORKDIR sets the image's WorkingDir, as in Docker


def test_wildcards_and_chmod(tmp_path):
    text = "FROM scratch\nCOPY --chmod=0644 --chown=0:0 *.conf /conf/\nCOPY --chmod=755 --link k.hvt /k\n"
    path = write(tmp_path, text, files=("b.conf", "a.conf", "k.hvt", "x.txt"))
    (tmp_path / "k.hvt").chmod(0o755)
    spec = load(path)
    assert [(f.source, f.target) for f in spec.files] == [("a.conf", "/conf/a.conf"), ("b.conf", "/conf/b.conf"), ("k.hvt", "/k")]


def test_chmod_other_than_what_urunix_writes_is_not_supported_yet(tmp_path):
    with pytest.raises(NotSupportedYet) as e:
        load(write(tmp_path, "FROM scratch\nCOPY --chmod=0755 f /f\n"))
    p = e.value.problem
    assert p.line == 2 and "--chmod=0755" in p.message and "chmod +x f" in p.hint


@pytest.mark.parametrize(
    "text,origin",
    [
        ("FROM ./image.tar\n", "./image.tar"),
        ("FROM ../layout\n", "../layout"),
        ("FROM /abs/oci\n", "/abs/oci"),
        ("FROM unikraft.org/nginx@sha256:" + "a" * 64 + " AS base\n", "unikraft.org/nginx@sha256:" + "a" * 64),
        ("ARG IMG=./x.tar\nFROM ${IMG}\n", "./x.tar"),
    ],
)
def test_from_an_image(tmp_path, text, origin):
    spec = load(write(tmp_path, text + 'LABEL com.urunc.unikernel.binary="/unikraft/bin/kernel"\n'))
    assert spec.rootfs == Rootfs(type="base", origin=origin, field="FROM")
    assert spec.where("FROM")["line"] == text.count("\n")


def test_from_map_names_a_local_archive(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = load(write(tmp_path, "FROM unikraft.org/nginx:1.15\n"), from_map={"unikraft.org/nginx:1.15": "nginx.tar"})
    assert spec.rootfs == Rootfs(type="base", origin=str(tmp_path / "nginx.tar"), field="FROM")


def test_from_map_is_for_containerfiles_only(tmp_path):
    (tmp_path / "spec.yaml").write_text("name: x\n")
    with pytest.raises(SpecError) as e:
        load(tmp_path / "spec.yaml", from_map={"a": "b"})
    assert "Containerfiles only" in e.value.problem.message


def test_platform_sets_the_architecture(tmp_path):
    spec = load(write(tmp_path, "FROM --platform=linux/arm64 scratch\n"))
    assert spec.architecture == "arm64" and spec.lines["architecture"] == 1


def test_unbalanced_quote_in_cmdline_is_kept_and_noted(tmp_path):
    text = '{BASE}LABEL "com.urunc.unikernel.cmdline"="/urunit /usr/sbin/nginx -g \'daemon off;"\n'
    spec = load(write(tmp_path, text))
    assert spec.annotations["cmdline"] == "/urunit /usr/sbin/nginx -g 'daemon off;"
    assert len(spec.notes) == 1 and "Containerfile:3" in spec.notes[0] and "unbalanced single quote" in spec.notes[0]


@pytest.mark.parametrize(
    "name,fmt",
    [
        ("Containerfile", "containerfile"),
        ("Dockerfile", "containerfile"),
        ("nginx.Containerfile", "containerfile"),
        ("redis.Dockerfile", "containerfile"),
    ],
)
def test_detect(tmp_path, name, fmt):
    f = tmp_path / name
    f.write_text("FROM scratch\n")
    assert detect(f) == fmt and load(f).format == fmt
    assert "containerfile" in FORMATS


def test_explicit_format(tmp_path):
    f = tmp_path / "spec.txt"
    f.write_text("FROM scratch\nLABEL a=b\n")
    assert load(f, "containerfile").labels == {"a": "b"}


# -- bad input: the line, the instruction, what to do -------------------------------


@pytest.mark.parametrize(
    "text,line,field,words",
    [
        ("{BASE}RUN make\n", 3, "RUN", ["runs a command", "build the artifact beforehand"]),
        ("{BASE}run \\\n  make\n", 3, "RUN", ["runs a command"]),
        ("{BASE}COPY --from=build /app /app\n", 3, "COPY --from=build", ["multi-stage", "docker cp"]),
        ("FROM scratch AS a\nFROM scratch\n", 2, "FROM", ["second FROM", "multi-stage"]),
        ("FROM redis:alpine\n", 1, "FROM", ["needs a digest", "--from NAME=PATH"]),
        ("FROM redis\n", 1, "FROM", ["needs a digest"]),
        ("{BASE}CMD redis-server /conf/redis.conf\n", 3, "CMD", ["shell form", '["redis-server", "/conf/redis.conf"]']),
        ("{BASE}ENTRYPOINT /bin/app --flag\n", 3, "ENTRYPOINT", ["shell form", '["/bin/app", "--flag"]']),
        ("{BASE}CMD ['a', 'b']\n", 3, "CMD", ["not a valid JSON array", "double-quoted"]),
        ('{BASE}CMD ["a", 1]\n', 3, "CMD", ["must be a string"]),
        ("{BASE}LABLE a=b\n", 3, "LABLE", ["not a Dockerfile instruction", 'did you mean "LABEL"?']),
        ("{BASE}COPI a /a\n", 3, "COPI", ['did you mean "COPY"?']),
        ("{BASE}LABEL a=b c\n", 3, "LABEL", ["can't find = in 'c'"]),
        ("{BASE}LABEL onlykey\n", 3, "LABEL", ["needs a value"]),
        ('{BASE}LABEL a="unterminated\n', 3, "LABEL a", ["matching double-quote"]),
        ("{BASE}LABEL a='unterminated\n", 3, "LABEL a", ["matching single-quote"]),
        ('{BASE}LABEL a="costs $5"\n', 3, "LABEL a", ["$5 is not set", "\\$5"]),
        ("{BASE}LABEL a=$HOME\n", 3, "LABEL a", ["$HOME is not set"]),
        ("{BASE}ARG V\nLABEL a=$V\n", 4, "LABEL a", ["$V is not set", "ARG V=..."]),
        ("ARG V=1\n{BASE}LABEL a=$V\n", 4, "LABEL a", ["$V is not set", "declare it again after FROM (ARG V)"]),
        ('{BASE}LABEL a="${V:?needs V}"\n', 3, "LABEL a", ["V: needs V"]),
        ("{BASE}LABEL a=${V%.*}\n", 3, "LABEL a", ["not supported by urunix"]),
        ("{BASE}ADD https://example.com/k /k\n", 3, "ADD", ["URL", "download the file beforehand"]),
        ("{BASE}COPY ../outside /x\n", 3, "COPY ../outside", ["outside the build context"]),
        ("{BASE}COPY f g /dir\n", 3, "COPY", ["must be a directory ending in /"]),
        ("{BASE}COPY *.nothing /x/\n", 3, "COPY *.nothing", ["no file in the build context matches"]),
        ("{BASE}COPY --chown=1000:1000 f /g\n", 3, "COPY --chown", ["owned by root"]),
        ("{BASE}COPY --chmod=rwx f /g\n", 3, "COPY --chmod", ["octal"]),
        ("{BASE}COPY --frm=x f /g\n", 3, "COPY --frm", ["unknown flag", 'did you mean "from"?']),
        ("{BASE}COPY f\n", 3, "COPY", ["a source and a destination"]),
        ("{BASE}VOLUME /data\n", 3, "VOLUME", ["not visible"]),
        ("{BASE}USER nobody\n", 3, "USER", ["no users"]),
        ('{BASE}SHELL ["/bin/bash", "-c"]\n', 3, "SHELL", ["shell-form"]),
        ("{BASE}HEALTHCHECK CMD curl localhost\n", 3, "HEALTHCHECK", ["health check"]),
        ("{BASE}ONBUILD RUN x\n", 3, "ONBUILD", ["later builds"]),
        ("LABEL a=b\nFROM scratch\n", 1, "LABEL", ["before FROM"]),
        ("ARG X=1\n", 1, "FROM", ["no FROM"]),
        ("{BASE}LABEL --x=1 a=b\n", 3, "LABEL --x", ["unknown flag", "LABEL takes no flags"]),
        ("FROM --platform=windows/amd64 scratch\n", 1, "FROM --platform", ["linux images only"]),
        ("FROM scratch extra\n", 1, "FROM", ["AS NAME"]),
    ],
)
def test_bad_input_names_the_line(tmp_path, text, line, field, words):
    with pytest.raises(SpecError) as e:
        load(write(tmp_path, text))
    p = e.value.problem
    rendered = e.value.render()
    assert (p.line, p.field) == (line, field), rendered
    assert p.file and p.file.endswith("Containerfile")
    for w in words:
        assert w in rendered, rendered


def test_every_problem_at_once(tmp_path):
    text = "FROM harbor.nbfc.io/nubificus/urunit:latest AS init\nFROM redis:alpine\nCOPY --from=init /urunit /urunit\n"
    with pytest.raises(SpecError) as e:
        load(write(tmp_path, text))
    assert [(p.line, p.field) for p in e.value.problems] == [(1, "FROM"), (2, "FROM"), (3, "COPY --from=init")]


@pytest.mark.parametrize(
    "text,line,words",
    [
        ("", None, ["no instructions"]),
        ("# only a comment\n\n", None, ["no instructions"]),
        ("# escape=x\nFROM scratch\n", 1, ["takes \\ or `"]),
        ("# escape=`\n# escape=\\\nFROM scratch\n", 2, ["only one escape"]),
    ],
)
def test_bad_files(tmp_path, text, line, words):
    with pytest.raises(SpecError) as e:
        load(write(tmp_path, text))
    assert e.value.problem.line == line and e.value.problem.file.endswith("Containerfile")
    for w in words:
        assert w in e.value.render()


def test_add_of_an_archive_is_not_supported_yet(tmp_path):
    import tarfile

    with tarfile.open(tmp_path / "t.tar", "w") as t:
        t.add(write(tmp_path, "x", name="inner"), arcname="inner")
    with pytest.raises(NotSupportedYet) as e:
        load(write(tmp_path, "FROM scratch\nADD t.tar /t/\n"))
    assert e.value.problem.line == 2 and "unpack" in e.value.problem.message


def test_add_of_a_plain_file_is_copy(tmp_path):
    spec = load(write(tmp_path, "FROM scratch\nADD f /x/\n"))
    assert spec.files == [FileEntry("f", tmp_path / "f", "/x/f", "ADD f")]


def test_ignored_instructions_are_noted(tmp_path):
    text = "{BASE}EXPOSE 80\nSTOPSIGNAL SIGTERM\nMAINTAINER me\nUSER root\nHEALTHCHECK NONE\n"
    spec = load(write(tmp_path, text))
    assert len(spec.notes) == 5
    assert all(n.startswith("warning: ") for n in spec.notes)
