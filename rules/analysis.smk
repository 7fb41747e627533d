# Stage 3: per setting, tables, figures and the paper's claims as checks from the run files; then the experiment's
# main table (beside the paper's) and claims table.


rule analysis_config:
    output:
        f"{RESULTS}/configs/{{backbone}}/{{task}}/analysis.yaml",
    params:
        settings=lambda w: analysis_settings(w.backbone, w.task),
    log:
        f"{RESULTS}/logs/configs/{{backbone}}_{{task}}_analysis.log",
    threads: 1
    resources:
        runtime=1,
        mem_mb=200,
        gpus=0,
    run:
        write_yaml(output[0], params.settings)


rule claims:
    input:
        settings=f"{RESULTS}/configs/{{backbone}}/{{task}}/analysis.yaml",
        runs=setting_finals,
        scores=setting_scores,
    output:
        report(f"{RESULTS}/{{backbone}}/{{task}}/tables/claims.md", caption="../workflow/report/claims.rst",
               category="Claims", subcategory="{backbone} / {task}"),
        f"{RESULTS}/{{backbone}}/{{task}}/tables/claims.csv",
        f"{RESULTS}/{{backbone}}/{{task}}/tables/claims.tex",
    params:
        runs=lambda w, output: os.path.dirname(os.path.dirname(output[0])),
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{RESULTS}/logs/claims_{{backbone}}_{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/claims_{{backbone}}_{{task}}.tsv"
    threads: 1
    conda:
        "../environment.yml"
    resources:
        runtime=res("analysis", "runtime", 10),
        mem_mb=res("analysis", "mem_mb", 4000),
        gpus=0,
        **slurm_res("analysis"),
    shell:
        "python -m analysis claims --runs {params.runs} --settings {input.settings} --out {params.out} > {log} 2>&1"


# The report lists a subcategory's unlabelled items by path: figures/claims_forest.png before tables/claims.md.
rule claims_forest:
    input:
        f"{RESULTS}/{{backbone}}/{{task}}/tables/claims.csv",
    output:
        report(f"{RESULTS}/{{backbone}}/{{task}}/figures/claims_forest.png", caption="../workflow/report/claims_forest.rst",
               category="Claims", subcategory="{backbone} / {task}"),
    log:
        f"{RESULTS}/logs/claims_forest_{{backbone}}_{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/claims_forest_{{backbone}}_{{task}}.tsv"
    threads: 1
    conda:
        "../environment.yml"
    resources:
        runtime=res("analysis", "runtime", 10),
        mem_mb=res("analysis", "mem_mb", 4000),
        gpus=0,
        **slurm_res("analysis"),
    shell:
        "python -m analysis forest --claims {input} --out {output} > {log} 2>&1"


if SWEEP:

    rule sweep_config:
        output:
            f"{RESULTS}/configs/{{backbone}}/{{task}}/sweep.yaml",
        params:
            sweep=lambda w: sweep_settings(w.backbone, w.task),
        log:
            f"{RESULTS}/logs/configs/{{backbone}}_{{task}}_sweep.log",
        threads: 1
        resources:
            runtime=1,
            mem_mb=200,
            gpus=0,
        run:
            write_yaml(output[0], params.sweep)

    # Every claim row that names a swept variant, evaluated at each grid point with the point's runs in the
    # variant's place (analysis/sensitivity.py); the report sorts a subcategory by file name, so both come after
    # claims.md and claims_forest.png.
    rule claims_sensitivity:
        input:
            settings=f"{RESULTS}/configs/{{backbone}}/{{task}}/analysis.yaml",
            sweep=f"{RESULTS}/configs/{{backbone}}/{{task}}/sweep.yaml",
            runs=sweep_inputs,
        output:
            md=report(f"{RESULTS}/{{backbone}}/{{task}}/tables/claims_sensitivity.md",
                      caption="../workflow/report/claims_sensitivity.rst", category="Claims",
                      subcategory="{backbone} / {task}"),
            csv=f"{RESULTS}/{{backbone}}/{{task}}/tables/claims_sensitivity.csv",
            figure=report(f"{RESULTS}/{{backbone}}/{{task}}/figures/claims_sensitivity.png",
                          caption="../workflow/report/claims_sensitivity.rst", category="Claims",
                          subcategory="{backbone} / {task}"),
        params:
            runs=lambda w: f"{RESULTS}/{w.backbone}/{w.task}",
            out=lambda w, output: os.path.dirname(output.md),
        log:
            f"{RESULTS}/logs/claims_sensitivity_{{backbone}}_{{task}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/claims_sensitivity_{{backbone}}_{{task}}.tsv"
        threads: 2  # one claims table per grid point, two at a time (Snakemake lowers it to --cores)
        conda:
            "../environment.yml"
        resources:
            runtime=res("analysis", "runtime", 10),
            mem_mb=res("analysis", "mem_mb", 4000),
            gpus=0,
            **slurm_res("analysis"),
        shell:
            "python -m analysis sensitivity --runs {params.runs} --settings {input.settings} --sweep {input.sweep}"
            " --out {params.out} --figure {output.figure} --workers {threads} > {log} 2>&1"


rule claims_summary:
    input:
        [f"{RESULTS}/{b}/{t}/tables/claims.csv" for b, t in SETTINGS],
    output:
        report(f"{RESULTS}/tables/claims.md", caption="../workflow/report/claims_summary.rst", category="Claims"),
        f"{RESULTS}/tables/claims.csv",
        f"{RESULTS}/tables/claims.tex",
    params:
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{RESULTS}/logs/claims_summary.log",
    threads: 1
    conda:
        "../environment.yml"
    resources:
        runtime=res("analysis", "runtime", 10),
        mem_mb=res("analysis", "mem_mb", 4000),
        gpus=0,
        **slurm_res("analysis"),
    shell:
        "python -m analysis claims_summary --tables {input} --out {params.out} > {log} 2>&1"


rule tables:
    input:
        settings=f"{RESULTS}/configs/{{backbone}}/{{task}}/analysis.yaml",
        runs=setting_finals,
        scores=setting_scores,
    output:
        report(f"{RESULTS}/{{backbone}}/{{task}}/tables/main.md", caption="../workflow/report/tables.rst",
               category="Tables", subcategory="{backbone} / {task}"),
        f"{RESULTS}/{{backbone}}/{{task}}/tables/main.csv",
        f"{RESULTS}/{{backbone}}/{{task}}/tables/main.tex",
        f"{RESULTS}/{{backbone}}/{{task}}/tables/main_raw.csv",
        f"{RESULTS}/{{backbone}}/{{task}}/tables/step_diagnostics.csv",
    params:
        runs=lambda w, output: os.path.dirname(os.path.dirname(output[0])),
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{RESULTS}/logs/tables_{{backbone}}_{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables_{{backbone}}_{{task}}.tsv"
    threads: 1
    conda:
        "../environment.yml"
    resources:
        runtime=res("analysis", "runtime", 10),
        mem_mb=res("analysis", "mem_mb", 4000),
        gpus=0,
        **slurm_res("analysis"),
    shell:
        "python -m analysis tables --runs {params.runs} --settings {input.settings} --out {params.out} > {log} 2>&1"


rule comparison:
    input:
        settings=f"{RESULTS}/configs/{{backbone}}/{{task}}/analysis.yaml",
        runs=setting_finals,
    output:
        report(f"{RESULTS}/{{backbone}}/{{task}}/tables/{{comparison}}.md", caption="../workflow/report/comparison.rst",
               category="Tables", subcategory="{backbone} / {task}"),
        f"{RESULTS}/{{backbone}}/{{task}}/tables/{{comparison}}.csv",
        f"{RESULTS}/{{backbone}}/{{task}}/tables/{{comparison}}.tex",
    params:
        runs=lambda w, output: os.path.dirname(os.path.dirname(output[0])),
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{RESULTS}/logs/comparison_{{backbone}}_{{task}}_{{comparison}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/comparison_{{backbone}}_{{task}}_{{comparison}}.tsv"
    threads: 1
    conda:
        "../environment.yml"
    resources:
        runtime=res("analysis", "runtime", 10),
        mem_mb=res("analysis", "mem_mb", 4000),
        gpus=0,
        **slurm_res("analysis"),
    shell:
        "python -m analysis comparison --name {wildcards.comparison} --runs {params.runs} --settings {input.settings}"
        " --out {params.out} > {log} 2>&1"


rule figures:
    input:
        settings=f"{RESULTS}/configs/{{backbone}}/{{task}}/analysis.yaml",
        runs=setting_finals,
    output:
        report(expand(f"{RESULTS}/{{{{backbone}}}}/{{{{task}}}}/figures/{{f}}.png", f=FIGURES),
               caption="../workflow/report/figures.rst", category="Figures", subcategory="{backbone} / {task}"),
        expand(f"{RESULTS}/{{{{backbone}}}}/{{{{task}}}}/figures/{{f}}.pdf", f=FIGURES),
    params:
        runs=lambda w, output: os.path.dirname(os.path.dirname(output[0])),
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{RESULTS}/logs/figures_{{backbone}}_{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures_{{backbone}}_{{task}}.tsv"
    threads: 1
    conda:
        "../environment.yml"
    resources:
        runtime=res("analysis", "runtime", 10),
        mem_mb=res("analysis", "mem_mb", 4000),
        gpus=0,
        **slurm_res("analysis"),
    shell:
        "python -m analysis figures --runs {params.runs} --settings {input.settings} --out {params.out} > {log} 2>&1"


rule histograms:
    input:
        lambda w: expand(f"{RESULTS}/{w.backbone}/{w.task}/{{variant}}/seed{{seed}}/final.json",
                         variant=histogram_variants(w.backbone, w.task), seed=SEEDS),
    output:
        report(f"{RESULTS}/{{backbone}}/{{task}}/figures/histograms/iteration{{iteration}}.png",
               caption="../workflow/report/histograms.rst", category="Figures", subcategory="{backbone} / {task}"),
        f"{RESULTS}/{{backbone}}/{{task}}/figures/histograms/iteration{{iteration}}.pdf",
    params:
        runs=lambda w: f"{RESULTS}/{w.backbone}/{w.task}",
        variants=lambda w: " ".join(histogram_variants(w.backbone, w.task)),
        seeds=" ".join(str(s) for s in SEEDS),
        stem=lambda w, output: os.path.splitext(output[0])[0],
    log:
        f"{RESULTS}/logs/histograms_{{backbone}}_{{task}}_{{iteration}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/histograms_{{backbone}}_{{task}}_{{iteration}}.tsv"
    threads: 1
    conda:
        "../environment.yml"
    resources:
        runtime=res("analysis", "runtime", 10),
        mem_mb=res("analysis", "mem_mb", 4000),
        gpus=0,
        **slurm_res("analysis"),
    shell:
        "python -m analysis histograms --runs {params.runs} --variants {params.variants} --seeds {params.seeds}"
        " --iterations {wildcards.iteration} --form used --out {params.stem} > {log} 2>&1"


rule summary:
    input:
        [f"{RESULTS}/{b}/{t}/tables/main_raw.csv" for b, t in SETTINGS],
    output:
        report(f"{RESULTS}/tables/main.md", caption="../workflow/report/summary.rst", category="Tables"),
        f"{RESULTS}/tables/main.csv",
        f"{RESULTS}/tables/main.tex",
        report(f"{RESULTS}/tables/paper_main.md", caption="../workflow/report/summary.rst", category="Tables"),
        f"{RESULTS}/tables/paper_main.csv",
        f"{RESULTS}/tables/paper_main.tex",
        report(f"{RESULTS}/tables/main_vs_paper.md", caption="../workflow/report/main_vs_paper.rst", category="Tables"),
        f"{RESULTS}/tables/main_vs_paper.csv",
        f"{RESULTS}/tables/main_vs_paper.tex",
    params:
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{RESULTS}/logs/summary.log",
    threads: 1
    conda:
        "../environment.yml"
    resources:
        runtime=res("analysis", "runtime", 10),
        mem_mb=res("analysis", "mem_mb", 4000),
        gpus=0,
        **slurm_res("analysis"),
    shell:
        "python -m analysis summary --tables {input} --out {params.out} > {log} 2>&1"
