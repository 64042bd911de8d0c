"""opinbench's lm-eval task folder.

Installed, this folder is the package ``opinbench._bundled.tasks_yaml``, which the
``lm_eval.tasks`` entry point in pyproject.toml names: an lm-eval release that reads that
group (lm-evaluation-harness PR #4015) scans the folder of the module it names. lm-eval's
index reads only ``*.yaml`` files, so this file changes nothing else.
"""
