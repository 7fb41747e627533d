# grpo-guard: train every variant x seed, then tables, figures and a report.
#   snakemake --cores 2 --workflow-profile workflow/profiles/default                (nano default)
#   snakemake --cores 2 --workflow-profile workflow/profiles/default --configfile workflow/config/<exp>.yaml
#   snakemake --report results/<exp>/report.html
#   snakemake plan --cores 1 --configfile workflow/config/<exp>.yaml    (cost before running: results/<exp>/plan.md)
from snakemake.utils import min_version, validate

min_version("9.0")


# The nano default only when no --configfile is given (otherwise Snakemake would merge its grid in).
if not config:

    configfile: "workflow/config/nano.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/train.smk"
include: "rules/analysis.smk"
include: "rules/plan.smk"


rule all:
    input:
        all_targets(),
    default_target: True
