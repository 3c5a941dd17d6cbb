"""The Colab notebooks in launch/colab/: committed clean (fast), and executed end to end at tiny sizes (slow).

The slow test runs each notebook in a real Jupyter kernel (nbclient + ipykernel), as Colab would, with
LRM_JAX_NOTEBOOK_TINY=1 and one shared LRM_JAX_NOTEBOOK_WORKDIR, in the order a user would meet them cheapest:
02 trains the reward model, 01 and 03 reuse it (each trains a quick one itself when run alone). Any cell error fails
the test. Set LRM_JAX_NOTEBOOK_OUT=DIR to keep the executed notebooks (outputs and plots) for a look.
"""
import os
import time

import nbformat
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLAB = os.path.join(ROOT, "launch", "colab")
NOTEBOOKS = ("01_quickstart.ipynb", "02_train_reward_model.ipynb", "03_refine_policy.ipynb")
EXECUTION_ORDER = ("02_train_reward_model.ipynb", "01_quickstart.ipynb", "03_refine_policy.ipynb")


def _read(name):
  return nbformat.read(os.path.join(COLAB, name), as_version=4)


def test_the_three_notebooks_are_there():
  assert sorted(f for f in os.listdir(COLAB) if f.endswith(".ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_without_outputs_and_has_one_parameter_cell(name):
  nb = _read(name)
  nbformat.validate(nb)
  code = [c for c in nb.cells if c.cell_type == "code"]
  dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
  assert not dirty, f"{name}: code cells {dirty} have stored outputs or execution counts; clear them before committing"
  params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
  assert len(params) == 1, f"{name}: expected one code cell tagged 'parameters', found {len(params)}"
  assert "LRM_JAX_NOTEBOOK_TINY" in params[0].source, f"{name}: the parameter cell must read LRM_JAX_NOTEBOOK_TINY"
  # Opens with what it shows and how long it takes; the first code cell installs the repo on a fresh runtime.
  assert nb.cells[0].cell_type == "markdown" and "**Time**" in nb.cells[0].source, name
  assert "pip" in code[0].source and "find_spec(\"lrm_jax\")" in code[0].source, f"{name}: first code cell: install"
  assert code.index(params[0]) == 1, f"{name}: the parameter cell should come right after the install cell"


def _outputs(nb, kind):
  return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if kind in o.get("data", {})]


@pytest.fixture(scope="module")
def shared_workdir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("colab"))


@pytest.mark.slow
@pytest.mark.parametrize("name", EXECUTION_ORDER)
def test_notebook_executes_at_tiny_size(name, shared_workdir, monkeypatch):
  from nbclient import NotebookClient  # pinned in requirements-dev.txt, with ipykernel for the kernel
  monkeypatch.setenv("LRM_JAX_NOTEBOOK_TINY", "1")
  monkeypatch.setenv("LRM_JAX_NOTEBOOK_WORKDIR", shared_workdir)
  # The kernel is a subprocess: it must import this checkout, not whatever lrm_jax the environment has installed.
  monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
  monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
  nb = _read(name)
  client = NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": COLAB}})
  t0 = time.time()
  try:
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any cell error
  finally:
    out = os.environ.get("LRM_JAX_NOTEBOOK_OUT")
    if out:
      os.makedirs(out, exist_ok=True)
      nbformat.write(nb, os.path.join(out, name))
  print(f"{name}: {time.time() - t0:.0f} s")
  first = "".join(o.get("text", "") for o in nb.cells[1].outputs)
  assert f"lrm_jax from {ROOT}" in first, f"{name}: the kernel imported another lrm_jax: {first!r}"
  assert _outputs(nb, "image/png"), f"{name}: no plot in the outputs"
  expected = {"02_train_reward_model.ipynb": "reward_model/eval/metrics.json",
              "01_quickstart.ipynb": None, "03_refine_policy.ipynb": "refine/refine.json"}[name]
  if expected:
    assert os.path.exists(os.path.join(shared_workdir, expected)), f"{name}: {expected} was not written"
  assert _outputs(nb, "text/markdown"), f"{name}: no results table in the outputs"
