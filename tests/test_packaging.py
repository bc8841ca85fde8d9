"""pyproject.toml lists every Python package of the tree, so that
`pip install .` (not only an editable install) ships all of ember."""
import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOP = {"core": "ember.core", "linen": "ember.linen", "optim": "ember.optim",
       "checkpoint": "ember.checkpoint"}


def test_every_package_directory_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed, dirs = set(config["packages"]), config["package-dir"]
    found = set()
    for top, name in TOP.items():
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    assert found - listed == set(), "packages missing from pyproject.toml"
    for pkg in found:
        path = ROOT / dirs[pkg]
        assert (path / "__init__.py").exists(), f"{pkg} maps to {path}, which is not it"
