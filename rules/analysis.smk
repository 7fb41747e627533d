import os

# Stage 3: tables and figures from the run files; both go into the report with captions.


rule tables:
    input:
        config=f"{RESULTS}/experiment.yaml",
        runs=run_finals(),
    output:
        report(expand(f"{RESULTS}/tables/{{t}}.md", t=TABLES), caption="../workflow/report/tables.rst", category="Tables"),
        expand(f"{RESULTS}/tables/{{t}}.{{ext}}", t=TABLES, ext=["csv", "tex"]),
    params:
        runs=lambda w, input: os.path.dirname(os.path.dirname(os.path.dirname(input.runs[0]))),
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{RESULTS}/logs/tables.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables.tsv"
    threads: 1
    conda:
        "../environment.yml"
    resources:
        runtime=res("analysis", "runtime", 10),
        mem_mb=res("analysis", "mem_mb", 4000),
        gpus=0,
    shell:
        "python -m analysis tables --runs {params.runs} --config {input.config} --out {params.out} > {log} 2>&1"


rule figures:
    input:
        config=f"{RESULTS}/experiment.yaml",
        runs=run_finals(),
    output:
        report(expand(f"{RESULTS}/figures/{{f}}.png", f=FIGURES), caption="../workflow/report/figures.rst", category="Figures"),
        expand(f"{RESULTS}/figures/{{f}}.pdf", f=FIGURES),
    params:
        runs=lambda w, input: os.path.dirname(os.path.dirname(os.path.dirname(input.runs[0]))),
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{RESULTS}/logs/figures.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures.tsv"
    threads: 1
    conda:
        "../environment.yml"
    resources:
        runtime=res("analysis", "runtime", 10),
        mem_mb=res("analysis", "mem_mb", 4000),
        gpus=0,
    shell:
        "python -m analysis figures --runs {params.runs} --config {input.config} --out {params.out} > {log} 2>&1"
