"""Every test that starts a process (a Celery worker, vLLM, the stack, a fresh interpreter,
any subprocess) carries the ``slow`` mark, so ``-m "not slow"`` stays a quick suite. Plain
AST reading of tests/, no process started."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PROCESS_FIXTURES = {"worker", "vllm_base_url", "llm"}
PROCESS_CALLS = ("subprocess.", "Popen(", "start_worker(", "start_vllm_server(", "os.execv")


def _module_is_slow(tree: ast.Module, source: str) -> bool:
    return any(isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets)
               and "slow" in (ast.get_source_segment(source, node) or "") for node in tree.body)


def unmarked_process_tests(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    tree, lines = ast.parse(source), source.splitlines()
    if _module_is_slow(tree, source):
        return []

    def text(node: ast.AST) -> str:
        return "\n".join(lines[node.lineno - 1:node.end_lineno])

    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    known: dict[str, bool] = {}

    def starts_a_process(name: str) -> bool:  # directly, through a fixture or a helper of the module
        if name not in known:
            known[name] = False  # a recursion ends here
            node = functions[name]
            arguments = {a.arg for a in node.args.args}
            called = {c.func.id for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
            known[name] = (any(call in text(node) for call in PROCESS_CALLS)
                           or bool(arguments & PROCESS_FIXTURES)
                           or any(starts_a_process(n) for n in (called | arguments) & functions.keys()))
        return known[name]

    return [f"{path.name}:{node.lineno} {name}" for name, node in functions.items()
            if name.startswith("test_") and starts_a_process(name)
            and not any("slow" in text(d) for d in node.decorator_list)]


def test_every_test_that_starts_a_process_is_marked_slow():
    unmarked = [entry for path in sorted(TESTS.glob("test_*.py")) if path.name != Path(__file__).name
                for entry in unmarked_process_tests(path)]
    assert unmarked == []


def test_the_check_sees_an_unmarked_subprocess(tmp_path):
    probe = tmp_path / "test_probe.py"
    probe.write_text("import subprocess\n\ndef _run():\n    subprocess.run(['true'])\n\n"
                     "def test_a():\n    _run()\n\n@pytest.mark.slow\ndef test_b():\n    _run()\n\n"
                     "def test_c(worker):\n    pass\n\ndef test_d():\n    pass\n")
    assert unmarked_process_tests(probe) == ["test_probe.py:6 test_a", "test_probe.py:13 test_c"]
