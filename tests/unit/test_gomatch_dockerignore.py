"""Go's filepath.Match, .dockerignore patterns, the build context's symlink
resolution and "later COPY wins": the pieces the differential corpus
(tests/e2e/test_containerfile_corpus.py) checks against Docker as a whole,
here case by case, without an engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from urunix.loaders import dockerignore
from urunix.loaders.buildcontext import BuildContext
from urunix.loaders.copyorder import later_wins
from urunix.loaders.gomatch import BadPattern, has_wildcards, match
from urunix.spec import FileEntry

# (pattern, name, matches) -- Go's documented rules.
MATCH = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "ab/c", False),  # * never crosses /
    ("a*/b", "abc/b", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),  # ^ negates
    ("ab[^b-d]", "abe", True),
    ("ab[!c]", "ab!", True),  # ! does not: a class of "!" and "c"
    ("ab[!c]", "abd", False),
    ("a\\*b", "a*b", True),  # escapes
    ("a\\*b", "ab", False),
    ("a?b", "a☺b", True),  # ? is one character, not one byte
    ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False),
    ("a?b", "a/b", False),  # ? never matches /
    ("a[^x]b", "a/b", True),  # a negated class can
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("*x", "xxx", True),
    (".*", ".hidden", True),  # no special leading dot
]

BAD = ["[", "[^", "[^bc", "a[", "[-]", "[x-]", "[]a]", "\\", "a[\\", "[a-b-c]"]


@pytest.mark.parametrize("pattern,name,want", MATCH)
def test_go_match(pattern, name, want):
    assert match(pattern, name) is want


@pytest.mark.parametrize("pattern", BAD)
def test_go_bad_pattern(pattern):
    with pytest.raises(BadPattern):
        match(pattern, "a")


def test_bad_pattern_found_after_a_mismatch():
    with pytest.raises(BadPattern):
        match("x*[", "abc")


def test_wildcards_as_docker_sees_them():
    assert has_wildcards("a*") and has_wildcards("[ab]") and has_wildcards("a?")
    assert not has_wildcards("plain/name") and not has_wildcards("a\\*b")


def test_dockerignore_lines():
    text = "\ufeff# comment\n  *.key  \n!keep.key\n/conf\n./x/../y/\n\n#not/this\n! spaced\n"
    assert dockerignore.read_patterns(text) == ["*.key", "!keep.key", "conf", "y", "!spaced"]


@pytest.mark.parametrize(
    "patterns,path,excluded",
    [
        (["*.key"], "a.key", True),
        (["*.key"], "sub/a.key", False),  # only at the top, as Docker documents
        (["**/*.key"], "sub/deep/a.key", True),
        (["**/*.key"], "a.key", True),  # ** is zero directories too
        (["conf"], "conf/secret.env", True),  # a parent directory matches
        (["conf", "!conf/public.env"], "conf/public.env", False),
        (["conf", "!conf/public.env"], "conf/secret.env", True),
        (["*.key", "!keep.key"], "keep.key", False),
        (["!keep.key", "*.key"], "keep.key", True),  # the last match decides
        (["docs/**"], "docs", False),  # below docs, not docs itself
        (["docs/**"], "docs/a/b", True),
        (["log[0-9]"], "log7", True),
        (["lo?x"], "logx", True),
        (["a+b(c)"], "a+b(c)", True),  # regexp characters are literal
        (["**"], "anything/at/all", True),
    ],
)
def test_dockerignore_matching(patterns, path, excluded):
    assert dockerignore.Ignore(patterns).excluded(path) is excluded


def test_dockerignore_refuses_what_docker_refuses():
    with pytest.raises(ValueError):
        dockerignore.Ignore(["!"])
    with pytest.raises(BadPattern):
        dockerignore.Ignore(["[x"])


def _tree(root: Path, files: dict[str, str | tuple]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, tuple):
            p.symlink_to(content[1])
        else:
            p.write_text(content)
    return root


def test_context_walk_keeps_dirs_only_for_what_they_hold(tmp_path):
    _tree(
        tmp_path,
        {
            "docs/keep.md": "k",
            "docs/drop.md": "d",
            "other/x": "x",
            "a": "a",
            ".dockerignore": "docs\n!docs/keep.md\n!nothing/here\nother\n",
        },
    )
    kept = dockerignore.load(str(tmp_path)).included(str(tmp_path))
    assert kept == {"docs", "docs/keep.md", "a", ".dockerignore"}


def test_symlinks_resolve_inside_the_context(tmp_path):
    ctx = tmp_path / "ctx"
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("host")
    _tree(
        ctx,
        {
            "abs": ("link", str(tmp_path / "outside" / "secret")),
            "rel": ("link", "../outside/secret"),
            "outside/secret": "inside",
            "dir/f": "f",
            "dl": ("link", "dir"),
            "loop": ("link", "loop"),
        },
    )
    c = BuildContext(str(ctx))
    assert c.resolve("rel").rel == "outside/secret" and c.resolve("rel").via_symlink
    found = c.resolve("abs")
    assert found.kind == "missing" and found.rel == str(tmp_path / "outside" / "secret").lstrip("/")
    assert c.resolve("dl/f").rel == "dir/f" and c.resolve("dl/f").kind == "file"
    assert c.resolve("dl").kind == "dir"
    with pytest.raises(Exception, match="too many levels"):
        c.resolve("loop")


def test_glob_walks_in_docker_order(tmp_path):
    _tree(tmp_path, {"a/x": "", "a/b/x": "", "ab": "", "b": "", ".dockerignore": "b\n"})
    c = BuildContext(str(tmp_path))
    assert c.glob("a*") == ["a", "ab"]
    assert c.glob("*/x") == ["a/x"]
    assert c.glob("b") == []  # excluded by .dockerignore


def test_later_copy_wins(tmp_path):
    _tree(tmp_path, {"a": "a", "b": "b", "d1/both": "1", "d1/only1": "1", "d2/both": "2", "d2/sub/x": "x"})
    e = lambda src, target: FileEntry(src, tmp_path / src, target, f"COPY {src}")  # noqa: E731
    out = later_wins([e("a", "/f"), e("b", "/f"), e("d1", "/m"), e("d2", "/m"), e("a", "/m/sub/x")])
    got = [(f.source, str(f.path.relative_to(tmp_path)), f.target, sorted(f.exclude)) for f in out]
    assert got == [
        ("b", "b", "/f", []),
        ("d1", "d1", "/m", ["both"]),  # d2/both replaces it
        ("d2", "d2/both", "/m/both", []),
        ("d2", "d2/sub", "/m/sub", ["x"]),  # the later COPY a /m/sub/x replaces it
        ("a", "a", "/m/sub/x", []),
    ]
    untouched = [e("a", "/x"), e("b", "/y")]
    assert later_wins(untouched) is untouched


def test_a_symlink_is_never_split_into_an_entry_of_its_own(tmp_path):
    """Splitting a directory into its children must not turn a symlink at
    its top into a FileEntry: the writer would copy what it points at."""
    from urunix.loaders.copyorder import CannotSplit

    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("host")
    _tree(tmp_path / "ctx", {"d1/f": "1", "d2/g": "2", "d2/leak": ("link", str(tmp_path / "outside"))})
    ctx = tmp_path / "ctx"
    e = lambda src, target: FileEntry(src, ctx / src, target, f"COPY {src}")  # noqa: E731
    with pytest.raises(CannotSplit) as info:
        later_wins([e("d1", "/m"), e("d2", "/m")])
    assert info.value.name == "leak"
