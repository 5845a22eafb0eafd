"""Registry of comparisons, selected on the command line by NAME.

A comparison is a module with:
    NAME          str, the command-line name (`bench/run NAME`)
    TITLE         str, one line for --list and the report
    APT_PACKAGES  list of Debian packages it needs (installed unless --quick)
    run(ctx)      -> dict in the shape documented in berthbench/result.py
                  (build it with result.Result; report and chart need nothing else)

To add one (engine end-to-end run, 50-container memory, pull, ...): write
comparisons/<name>.py and append it to ALL below.
"""

from . import engine_idle, engine_run, engine_run_bridge, image_pull, image_save_load, network, runtime_run

ALL = [runtime_run, image_pull, image_save_load, engine_run, engine_idle, engine_run_bridge, network]
BY_NAME = {m.NAME: m for m in ALL}
