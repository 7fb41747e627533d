# Stage 3: tables and figures from the run files; both go into the report with captions.


rule tables:
    input:
        config=f"{RESULTS}/experiment.yaml",
        runs=run_finals(),
    output:
        report(expand(f"{RESULTS}/tables/{{t}}.md", t=TABLES), caption="../workflow/report/tables.rst", category="Tables"),
        expand(f"{RESULTS}/tables/{{t}}.{{ext}}", t=TABLES, ext=["csv", "tex"]),
    log:
        f"{RESULTS}/logs/tables.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables.tsv"
    threads: 1
    resources:
        runtime=res("analysis", "runtime", 10),
        mem_mb=res("analysis", "mem_mb", 4000),
        gpus=0,
    shell:
        "python -m analysis tables --runs {RESULTS} --config {input.config} --out {RESULTS}/tables > {log} 2>&1"


rule figures:
    input:
        config=f"{RESULTS}/experiment.yaml",
        runs=run_finals(),
    output:
        report(expand(f"{RESULTS}/figures/{{f}}.png", f=FIGURES), caption="../workflow/report/figures.rst", category="Figures"),
        expand(f"{RESULTS}/figures/{{f}}.pdf", f=FIGURES),
    log:
        f"{RESULTS}/logs/figures.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures.tsv"
    threads: 1
    resources:
        runtime=res("analysis", "runtime", 10),
        mem_mb=res("analysis", "mem_mb", 4000),
        gpus=0,
    shell:
        "python -m analysis figures --runs {RESULTS} --config {input.config} --out {RESULTS}/figures > {log} 2>&1"
