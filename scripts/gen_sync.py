"""Generate ``src/caiclient/sync.py`` (the synchronous ``Client``) from the async client.

The sync surface must match the async one exactly, with real signatures and docstrings, so it
is written out from the async source rather than forwarded at run time:

- every public method of every ``_api/Async*API`` class becomes a method of the class of the
  same name without ``Async`` (``AsyncChatsAPI`` -> ``ChatsAPI``), with the same parameters,
  defaults, annotations and docstring; ``auth.AsyncAuth`` becomes ``Auth`` likewise;
- ``async def`` methods run on the client's private loop (``Portal.call``);
- methods returning ``AsyncIterator[X]`` (and async generators) return ``Iterator[X]``
  (``Portal.iterate``), created in the caller's thread so argument errors surface at once;
- ``Client.__init__`` mirrors ``AsyncClient.__init__``.

Run ``python scripts/gen_sync.py`` after changing the async surface; ``--check`` (used by the
tests) fails when the file on disk is stale.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "caiclient"
TARGET = PACKAGE / "sync.py"

# Names that never need an import in the generated module.
_BUILTINS = {"None", "str", "int", "float", "bool", "bytes", "dict", "list", "tuple", "object"}


@dataclass
class Imports:
    """``from <module> import <names>`` lines for the generated module (package-relative)."""

    by_module: dict[str, set[str]] = field(default_factory=dict)

    def add(self, module: str, name: str) -> None:
        self.by_module.setdefault(module, set()).add(name)

    def render(self) -> list[str]:
        plain = [f"import {name}" for name in sorted(self.by_module.get("import", ()))]
        absolute = sorted(m for m in self.by_module if not m.startswith(".") and m != "import")
        relative = sorted(m for m in self.by_module if m.startswith("."))
        return plain + [
            f"from {m} import {', '.join(sorted(self.by_module[m]))}" for m in absolute + relative
        ]


def _source_imports(tree: ast.Module, package: list[str]) -> dict[str, str]:
    """name -> module as seen from the package root, for a file in sub-package ``package``
    (``[]`` for the root, ``["_api"]`` for ``_api/``)."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found[alias.asname or alias.name] = "import"
        if isinstance(node, ast.ImportFrom):
            if node.level:
                up = node.level - 1
                if up > len(package):
                    raise SystemExit(f"cannot re-root import level {node.level}")
                parts = package[: len(package) - up] + ([node.module] if node.module else [])
                module = "." + ".".join(parts)
            else:
                module = node.module or ""
            for alias in node.names:
                found[alias.asname or alias.name] = module
    return found


def _module_names(tree: ast.Module, module: str) -> dict[str, str]:
    """Classes, functions and constants a module defines at top level -> that module."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = module
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found.update({t.id: module for t in targets if isinstance(t, ast.Name)})
    return found


def _names(node: ast.AST | None) -> set[str]:
    if node is None:
        return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _sync_annotation(node: ast.expr | None) -> str | None:
    if node is None:
        return None
    text = ast.unparse(node)
    return text.replace("AsyncIterator", "Iterator").replace("AsyncGenerator", "Iterator")


def _is_async_gen(fn: ast.AsyncFunctionDef) -> bool:
    return any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in ast.walk(fn))


def _returns_async_iterator(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return fn.returns is not None and "AsyncIterator" in ast.unparse(fn.returns)


def _signature(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, str]:
    """(parameter list source, forwarding argument source) of a method, without ``self``."""
    args = fn.args
    params: list[str] = []
    forward: list[str] = []

    def param(a: ast.arg, default: ast.expr | None) -> str:
        text = a.arg
        annotation = _sync_annotation(a.annotation)
        if annotation:
            text += f": {annotation}"
        if default is not None:
            text += f" = {ast.unparse(default)}" if annotation else f"={ast.unparse(default)}"
        return text

    positional = args.posonlyargs + args.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults += list(args.defaults)
    for index, (a, default) in enumerate(zip(positional, defaults, strict=True)):
        if index == 0 and a.arg == "self":
            continue
        params.append(param(a, default))
        forward.append(a.arg)
        if args.posonlyargs and a is args.posonlyargs[-1]:
            params.append("/")
    if args.vararg is not None:
        params.append("*" + param(args.vararg, None))
        forward.append("*" + args.vararg.arg)
    elif args.kwonlyargs:
        params.append("*")
    for a, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        params.append(param(a, default))
        forward.append(f"{a.arg}={a.arg}")
    if args.kwarg is not None:
        params.append("**" + param(args.kwarg, None))
        forward.append("**" + args.kwarg.arg)
    return ", ".join(["self", *params]), ", ".join(forward)


def _docstring(node: ast.AST, indent: str) -> list[str]:
    doc = ast.get_docstring(node, clean=False)  # type: ignore[arg-type]
    if not doc:
        return []
    doc = doc.replace("async for", "for").replace("``await ", "``")
    doc = doc.replace("contextlib.aclosing(", "contextlib.closing(")
    lines = doc.splitlines()
    out = [f'{indent}"""{lines[0]}']
    out += [(f"{line}" if line.strip() else "") for line in lines[1:]]
    out[-1] += '"""'
    return out


def _need(imports: Imports, names: set[str], source: dict[str, str], where: str) -> None:
    for name in names - _BUILTINS:
        if name == "Iterator":
            imports.add("collections.abc", "Iterator")
        elif name in source:
            imports.add(source[name], name)
        else:
            raise SystemExit(f"{where}: cannot find where {name!r} comes from")


def _method(
    fn: ast.FunctionDef | ast.AsyncFunctionDef,
    target: str,
    imports: Imports,
    source: dict[str, str],
) -> list[str]:
    params, forward = _signature(fn)
    returns = _sync_annotation(fn.returns)
    names = _names(fn.returns)
    for node in ast.walk(fn.args):
        if isinstance(node, ast.expr):
            names |= _names(node)
    names = {n.replace("AsyncIterator", "Iterator") for n in names}
    _need(imports, names, source, fn.name)
    head = f"    def {fn.name}({params})" + (f" -> {returns}:" if returns else ":")
    lines = [head, *_docstring(fn, "        ")]
    if isinstance(fn, ast.AsyncFunctionDef) and _is_async_gen(fn):
        lines.append(f"        return self._portal.iterate({target}.{fn.name}({forward}))")
    elif isinstance(fn, ast.AsyncFunctionDef):
        call = f"{target}.{fn.name}" + (f", {forward}" if forward else "")
        lines.append(f"        return self._portal.call({call})")
    elif _returns_async_iterator(fn):
        lines.append(f"        return self._portal.iterate({target}.{fn.name}({forward}))")
    else:
        lines.append(f"        return {target}.{fn.name}({forward})")
    return lines


def _public_methods(cls: ast.ClassDef) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [
        n
        for n in cls.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        and not n.name.startswith("_")
        and not any(isinstance(d, ast.Name) and d.id == "property" for d in n.decorator_list)
    ]


def _namespaces() -> list[tuple[str, str, ast.ClassDef, dict[str, str]]]:
    """(attribute, module, class) of every namespace AsyncClient creates, in order."""
    client = ast.parse((PACKAGE / "client.py").read_text())
    client_imports = _source_imports(client, [])
    init = next(
        n for n in ast.walk(client) if isinstance(n, ast.FunctionDef) and n.name == "__init__"
    )
    found = []
    for node in ast.walk(init):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Attribute)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id.endswith("API")
        ):
            attr, cls_name = node.targets[0].attr, node.value.func.id
            module = client_imports[cls_name]
            path = PACKAGE / (module.lstrip(".").replace(".", "/") + ".py")
            tree = ast.parse(path.read_text())
            cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name)
            package = module.lstrip(".").split(".")[:-1]
            source = _source_imports(tree, package) | _module_names(tree, module)
            found.append((attr, module, cls, source))
    return found


def _sync_name(name: str) -> str:
    if not name.startswith("Async"):
        raise SystemExit(f"{name}: async classes are named Async<Name> (the naming rule)")
    return name[len("Async") :]


def _auth(imports: Imports) -> list[str]:
    """The blocking ``Auth``: its own portal, the methods of ``AsyncAuth``."""
    tree = ast.parse((PACKAGE / "auth.py").read_text())
    source = _source_imports(tree, []) | _module_names(tree, ".auth")
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "AsyncAuth")
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    imports.add(".auth", "AsyncAuth")
    params, forward = _signature(init)
    for node in ast.walk(init.args):
        if isinstance(node, ast.expr):
            _need(imports, _names(node), source, "AsyncAuth.__init__")
    body = ["", "", "class Auth:", *_docstring(cls, "    "), ""]
    body += [f"    def __init__({params}) -> None:"]
    body += [f"        self._async = AsyncAuth({forward})", "        self._portal = Portal()"]
    body += ["        self._finalizer = weakref.finalize(self, self._portal.close)"]
    for fn in _public_methods(cls):
        body += ["", *_method(fn, "self._async", imports, source)]
    body += [
        "",
        "    def close(self) -> None:",
        '        """Stop the loop thread of this object (also done when it is collected)."""',
        "        self._finalizer()",
    ]
    return body


def generate() -> str:
    imports = Imports()
    imports.add("types", "TracebackType")
    imports.add("._portal", "Portal")
    imports.add(".client", "AsyncClient")
    body: list[str] = []
    namespaces = _namespaces()
    for _attr, module, cls, source in namespaces:
        imports.add(module, cls.name)
        name = _sync_name(cls.name)
        body += ["", "", f"class {name}:", *_docstring(cls, "    "), ""]
        body += [
            f"    def __init__(self, api: {cls.name}, portal: Portal) -> None:",
            "        self._api = api",
            "        self._portal = portal",
        ]
        for fn in _public_methods(cls):
            body += ["", *_method(fn, "self._api", imports, source)]
    body += _auth(imports)

    client_tree = ast.parse((PACKAGE / "client.py").read_text())
    client_source = _source_imports(client_tree, [])
    client_source.update(
        {
            n.targets[0].id: ".client"
            for n in client_tree.body
            if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
        }
    )
    async_client = next(
        n for n in client_tree.body if isinstance(n, ast.ClassDef) and n.name == "AsyncClient"
    )
    init = next(
        n for n in async_client.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"
    )
    params, forward = _signature(init)
    for arg in init.args.args + init.args.kwonlyargs:
        _need(imports, _names(arg.annotation), client_source, "AsyncClient.__init__")
    for default in init.args.defaults + [d for d in init.args.kw_defaults if d is not None]:
        _need(imports, _names(default), client_source, "AsyncClient.__init__")
    doc = (
        '    """A synchronous Character.AI client with the surface of :class:`AsyncClient`.\n'
        "\n"
        "    Every call blocks until done; ``stream`` and friends return plain iterators. It\n"
        "    drives an ``AsyncClient`` on a private event-loop thread (started on first use,\n"
        "    stopped by :meth:`close`), so it shares one socket, reconnect and recovery across\n"
        "    all threads that use it, and works inside a running event loop (Jupyter).\n"
        "    Arguments are those of\n"
        "    :class:`AsyncClient`.\n"
        '    """'
    )
    body += ["", "", "class Client:", doc, "", f"    def __init__({params}) -> None:"]
    body += [f"        self._async = AsyncClient({forward})", "        self._portal = Portal()"]
    body += [
        "        # Closing on garbage collection stops the loop thread; the finalizer holds",
        "        # no reference to the Client itself.",
        "        self._finalizer = weakref.finalize(",
        "            self, self._portal.close, self._async.aclose",
        "        )",
    ]
    for attr, _module, cls, _source in namespaces:
        body.append(
            f"        self.{attr} = {_sync_name(cls.name)}(self._async.{attr}, self._portal)"
        )
    for node in async_client.body:
        is_property = isinstance(node, ast.FunctionDef) and any(
            isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list
        )
        if is_property and not node.name.startswith("_"):
            assert isinstance(node, ast.FunctionDef)
            _need(imports, _names(node.returns), client_source, f"AsyncClient.{node.name}")
            returns = ast.unparse(node.returns) if node.returns else "Any"
            body += ["", "    @property", f"    def {node.name}(self) -> {returns}:"]
            body += _docstring(node, "        ")
            body.append(f"        return self._async.{node.name}")
    for node in async_client.body:
        if (
            isinstance(node, ast.AsyncFunctionDef)
            and not node.name.startswith("_")
            and node.name != "aclose"
        ):
            body += ["", *_method(node, "self._async", imports, client_source)]
    body += [
        "",
        "    def __repr__(self) -> str:",
        '        return repr(self._async).replace("<AsyncClient", "<Client", 1)',
        "",
        "    def close(self) -> None:",
        '        """Close the socket and the HTTP session and stop the loop thread. Idempotent."""',
        "        self._finalizer()",
        "",
        "    def __enter__(self) -> Client:",
        "        return self",
        "",
        "    def __exit__(",
        "        self,",
        "        exc_type: type[BaseException] | None,",
        "        exc: BaseException | None,",
        "        tb: TracebackType | None,",
        "    ) -> None:",
        "        self.close()",
    ]
    names = sorted(["Auth", "Client", *(_sync_name(cls.name) for _a, _m, cls, _s in namespaces)])
    header = [
        '"""The synchronous client: the surface of :class:`AsyncClient`, blocking.',
        "",
        "GENERATED by scripts/gen_sync.py from the async client; do not edit by hand.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import weakref",
        *imports.render(),
        "",
        "__all__ = [" + ", ".join(f'"{n}"' for n in names) + "]",
    ]
    return "\n".join(header + body) + "\n"


def main(argv: list[str]) -> int:
    import subprocess

    text = generate()
    # The ruff of the interpreter running this script (the project's venv in make/CI).
    ruff = [sys.executable, "-m", "ruff"]
    formatted = subprocess.run(
        [*ruff, "format", "--stdin-filename", str(TARGET), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fixed = subprocess.run(
        [*ruff, "check", "--fix", "--select", "I,RUF022", "--stdin-filename", str(TARGET), "-"],
        input=formatted,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != fixed:
            print("src/caiclient/sync.py is stale: run python scripts/gen_sync.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(fixed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
