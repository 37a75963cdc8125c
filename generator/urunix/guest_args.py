"""What the program inside the guest receives from what urunc hands the
guest (urunc_model.Result): argv, env, working directory.

Emulated from the guests' documented parsing and checked where we can run
it: the Linux kernel's split and urunit's regrouping by real qemu boots
(tests/boot), Unikraft (uk_argnparse, "--"), rumprun (parseargs on the raw
JSON token) and Mirage against the urunc harness study's emulation. Shown by
`urunix inspect --guest`. stdlib only."""

from __future__ import annotations

from .urunc_model import Image, Result

_KERNEL_OWN = {"panic", "console", "root", "rw", "ro", "ip", "init", "rdinit", "rootfstype", "rootflags", "retain_initrd"}


def _kernel_words(s: str) -> list[str]:
    """The kernel's split of its command line: at whitespace outside double
    quotes; a word's leading quote (and then its trailing one) and the
    quotes around a value after `=` are removed, inner ones stay; single
    quotes mean nothing."""
    out, i = [], 0
    while i < len(s):
        while i < len(s) and s[i].isspace():
            i += 1
        if i >= len(s):
            break
        j, inq = i, False
        while j < len(s) and (inq or not s[j].isspace()):
            if s[j] == '"':
                inq = not inq
            j += 1
        w, i = s[i:j], j
        if w.startswith('"'):
            w = w[1:-1] if len(w) > 1 and w.endswith('"') else w[1:]
        else:
            key, eq, val = w.partition("=")
            if eq and val.startswith('"'):
                w = key + "=" + (val[1:-1] if len(val) > 1 and val.endswith('"') else val[1:])
        out.append(w)
    return out


def urunit_argv(argv: list[str]) -> list[str]:
    """urunit's regrouping of its arguments (its README: a multi-word
    argument arrives wrapped in quotes): the first argument that opens a
    quote and does not close it is joined with the following words up to the
    one that closes it; what follows that group is dropped."""
    out = []
    for i, a in enumerate(argv):
        if a[:1] in ("'", '"') and not (len(a) > 1 and a[-1] == a[0]):
            q, buf = a[0], a[1:]
            for n in argv[i + 1 :]:
                if n == "":
                    continue
                if n == q or (n[-1] == q and n[-2:-1] != q):
                    buf += " " + n[:-1]
                    break
                buf += " " + n
            out.append(buf)
            break
        out.append(a)
    return out


def _quoted_split(s: str, backslash: bool = False) -> list[str]:
    """Whitespace split where '...' and "..." group (Unikraft's
    uk_argnparse; rumprun's parseargs, which also honours backslashes)."""
    out, cur, q, have, i = [], "", "", False, 0
    while i < len(s):
        ch = s[i]
        i += 1
        if backslash and ch == "\\" and i < len(s):
            cur, have = cur + s[i], True
            i += 1
            continue
        if ch in " \t\n\r\v" and not q:
            if have:
                out.append(cur)
            cur, have = "", False
            continue
        if ch in "'\"" and (not q or ch == q):
            q = "" if q else ch
            have = True
            continue
        cur, have = cur + ch, True
    if have:
        out.append(cur)
    return out


def app_view(img: Image, r: Result) -> dict | None:
    """What the program gets: argv, env, working directory (None when the
    guest does not start or its parsing is not modelled)."""
    if r.outcome != "started" or r.guest_cmdline is None:
        return None
    guest = r.config.get("unikernelType")
    cmd = r.guest_cmdline
    if guest == "linux":
        words = _kernel_words(cmd)
        k = words.index("--") if "--" in words else len(words)
        env, init = ["HOME=/", "TERM=linux"], None
        for w in words[:k]:
            key, eq, val = w.partition("=")
            if key in ("init", "rdinit") and eq:
                init = val
            elif key in _KERNEL_OWN or not eq or "." in key:
                continue  # the kernel's own, or a bare word (dropped)
            else:
                env = [e for e in env if not e.startswith(key + "=")] + [w]
        argv = [init or "/sbin/init"] + words[k + 1 :]
        wd = "/"
        if "urunit" in argv[0]:
            argv = urunit_argv(argv[1:])
            if r.urunit_conf is not None:
                conf = r.urunit_conf.split("\n")
                env = conf[conf.index("UES") + 1 : conf.index("UEE")]
                wd = next((line[3:] for line in conf if line.startswith("WD:")), "/")
        return {"argv": argv, "env": env, "wd": wd}
    if guest == "unikraft":
        words = _quoted_split(cmd)
        if not words:
            return {"argv": [], "env": [], "wd": "/"}
        rest = words[1:]
        k = rest.index("--") if "--" in rest else -1
        params, args = (rest[:k], rest[k + 1 :]) if k >= 0 else ([], rest)
        env = []
        if "env.vars=[" in params:
            j = params.index("env.vars=[")
            env = params[j + 1 : params.index("]", j)] if "]" in params[j:] else params[j + 1 :]
        return {"argv": [words[0]] + args, "env": env, "wd": "/"}
    if guest == "rumprun":
        raw = cmd[len('{"cmdline":"') :]
        i, out = 0, ""
        while i < len(raw) and raw[i] != '"':  # the raw JSON token: escapes stay
            out += raw[i : i + 2] if raw[i] == "\\" else raw[i]
            i += 2 if raw[i] == "\\" else 1
        envs = [e for e in cmd.split('"env":"')[1:]]
        env = [e.split('"', 1)[0] for e in envs]
        return {"argv": _quoted_split(out, backslash=True), "env": env, "wd": "/"}
    if guest == "mirage":
        return {"argv": cmd.split(" ", 2)[2].split(), "env": [], "wd": "/"}
    return None
