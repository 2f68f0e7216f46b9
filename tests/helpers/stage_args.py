"""Command-line arguments the workflow gives stages that read no config file."""

import json

from siamcollapse.config import schema_defaults

# collect-tables' thresholds of the health column: the schema's report.health, as the rule passes them.
HEALTH_ARGS = ["--health", json.dumps(schema_defaults()["report"]["health"])]
