"""The package's layers point one way: no module imports a module of a higher layer, nor of
another unit of its own layer (methods and evaluation, for instance, know nothing of each other)."""

from __future__ import annotations

from siamcollapse.codedeps import PACKAGE, PACKAGE_DIR, direct_imports

# Low to high. A unit is a top-level module or package of siamcollapse (models.naming, the
# planner's torch-free model names, sits apart from the torch models).
LAYERS = [
    ["errors", "names", "progress"],
    ["io", "config", "metrics", "distributed", "codedeps", "layout", "fingerprint", "models.naming"],
    ["data", "models", "optim", "spectrum_csv"],
    ["methods", "evaluation"],
    ["training"],
    ["plan"],
    ["preflight"],
    ["reporting"],
    ["stages", "launch", "dvc_yaml", "config_docs", "estimate_compute"],
    ["cli"],
    ["__main__", ""],
]


def unit_of(module: str) -> str:
    """The LAYERS entry a module belongs to: its longest listed prefix ('' = the package root)."""
    relative = module.removeprefix(PACKAGE).removeprefix(".")
    units = [unit for layer in LAYERS for unit in layer]
    matches = [u for u in units if u and (relative == u or relative.startswith(u + "."))]
    return max(matches, key=len) if matches else ""


def layer_of(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def package_modules() -> list[str]:
    modules = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules.append(".".join([PACKAGE, *parts]))
    return modules


def upward_or_sideways_imports() -> list[str]:
    found = []
    for module in package_modules():
        unit = unit_of(module)
        for imported in direct_imports(module):
            target = unit_of(imported)
            if imported == PACKAGE or target == unit:
                continue  # the package root (importing a submodule runs it) and the unit's own modules
            if layer_of(target) >= layer_of(unit):
                found.append(f"{module} (layer {layer_of(unit)}) imports {imported} (layer {layer_of(target)})")
    return found


def test_every_module_has_a_layer():
    assert {unit_of(m) for m in package_modules()} <= {u for layer in LAYERS for u in layer}
    assert len(package_modules()) > 40


def test_no_module_imports_a_higher_layer_or_a_sibling_unit():
    assert upward_or_sideways_imports() == []


def test_the_check_sees_an_upward_import():
    """The checker itself: an arrow from the loop to the planner (as there once was) counts."""
    assert layer_of(unit_of("siamcollapse.training.loop")) < layer_of(unit_of("siamcollapse.plan"))
    assert unit_of("siamcollapse.models.naming") == "models.naming" and unit_of("siamcollapse.models.vit") == "models"
