"""One module per pipeline stage, each the whole code path of one `siamcollapse <stage>` command.

A stage module defines ``RESOURCES`` (the config's resource family whose threads it
uses, or None when it reads no config), ``add_arguments(parser)`` for its input and output
paths, and ``run(args, config)``. ``config`` holds only the keys ``plan.STAGE_CONFIG_KEYS``
declares for the stage (reading another is an error naming it), unless the stage sets
``PLANS_RUNS = True`` because it resolves runs through the plan (pretrain, the pixel floor). Settings come from the experiment config, never from flags,
so Snakemake and DVC run identical commands and a config edit reaches the stage unchanged.

This file imports nothing: a stage's code dependencies (``siamcollapse.codedeps``) are the
modules it imports, so every stage must stay importable on its own.
"""

# Command name -> one-line help (here, so `siamcollapse --help` imports no stage).
HELP = {
    "prepare-data": "Generate the embedded procedural dataset (ImageFolder PNGs).",
    "make-subset": "Write the index file of one nested subset of the training set.",
    "pretrain": "Self-supervised pretraining or distillation of one run (or a random-init baseline's initialisation).",
    "extract-features": "Backbone features of train and val, and the train spectrum with its collapse metrics.",
    "extract-raw-pixels": "The raw-pixel floor: flattened eval-transformed pixels as features, and their spectrum.",
    "linear-probe": "Linear probe on cached features; top-1 on val.",
    "augmented-probe": "The paper's linear probe: augmented images through the frozen backbone (LARS); top-1 on val.",
    "knn": "Weighted kNN on L2-normalised features; top-1 on val for every configured k.",
    "collect-tables": "Gather every run's metrics into results tables (CSV and Markdown).",
    "plot-figures": "Spectrum and AUC figures (PNG).",
}
