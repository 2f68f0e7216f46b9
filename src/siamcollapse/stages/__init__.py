"""One module per pipeline stage, each the whole code path of one `siamcollapse <stage>` command.

A stage module defines ``RESOURCES`` (the config's resource family whose threads it
uses, or None when it reads no config), ``add_arguments(parser)`` for its input and output
paths, and ``run(args, config)``. ``config`` holds only the keys ``plan.STAGE_CONFIG_KEYS``
declares for the stage (reading another is an error naming it), unless the stage sets
``PLANS_RUNS = True`` because it resolves runs through the plan (pretrain, the pixel floor). Settings come from the experiment config, never from flags,
so Snakemake and DVC run identical commands and a config edit reaches the stage unchanged.

The first line of a stage's docstring is its command's help (``siamcollapse --help`` reads it
without importing the stage). This file holds only this docstring: a stage's code dependencies
(``siamcollapse.codedeps``) are the modules it imports, so every stage must stay importable on
its own, and a package file with no code is none of them.
"""
