"""docs/config.md is the schema's reference, generated and current; the schema itself is well formed."""

from __future__ import annotations

import argparse
import shlex

from siamcollapse import cli, config_docs
from siamcollapse.codedeps import PACKAGE_DIR
from siamcollapse.config import SCHEMA_PATH, load_yaml

REPO = PACKAGE_DIR.parents[1]
# The JSON-schema keywords the schema uses; anything else in a key's schema is a typo or a YAML
# flow mapping cut at a comma ("description: a, b" makes "b" a key and truncates the text).
KEYWORDS = {"$schema", "$defs", "$ref", "type", "description", "default", "enum", "properties",
            "additionalProperties", "propertyNames", "minProperties", "required", "items", "minItems", "maxItems",
            "uniqueItems", "minimum", "maximum", "exclusiveMinimum", "minLength", "pattern", "x-overrides"}


def stray_keys(node, path="") -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            # under these, keys are names (of properties, definitions, anchors) or default values
            named = path.endswith(("properties", "$defs", "default", "method_keys", "pretrain_keys")) or "default." in path
            if not named and key not in KEYWORDS:
                found.append(f"{path}.{key}")
            found += stray_keys(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for item in node:
            found += stray_keys(item, path)
    return found


def test_the_schema_has_no_stray_keys():
    assert stray_keys(load_yaml(SCHEMA_PATH)) == []


def test_stray_key_check_finds_a_description_cut_at_a_comma():
    cut = {"properties": {"seed": {"type": "integer", "description": "Generator seed; same seed", "same bytes.": None}}}
    assert stray_keys(cut) == ["properties.seed.same bytes."]


def test_committed_config_reference_is_current():
    args = argparse.Namespace(out=REPO / "docs" / "config.md", check=True)
    assert config_docs.main(args) == 0


def test_reference_lists_every_key_with_its_default():
    text = config_docs.render(load_yaml(SCHEMA_PATH))
    assert "| `pretrain.zero_init_residual` | boolean | `true` |" in text
    assert "| `methods.byol.base_lr` | number | `0.6` |" in text
    assert "`runs.<group>.seeds`" in text and "`distillations.<name>.teacher`" in text
    assert text.count("\n## `") == len(load_yaml(SCHEMA_PATH)["properties"])


def test_check_fails_on_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "config.md"
    stale.write_text(config_docs.render(load_yaml(SCHEMA_PATH)) + "an edit by hand\n")
    assert config_docs.main(argparse.Namespace(out=stale, check=True)) == 1
    err = capsys.readouterr().err
    assert "out of date" in err
    # the command the error gives, as written, brings it up to date
    advice = shlex.split(err.split("regenerate it: ")[1])
    assert advice[0] == "siamcollapse" and cli.main(advice[1:]) == 0
    assert config_docs.main(argparse.Namespace(out=stale, check=True)) == 0
