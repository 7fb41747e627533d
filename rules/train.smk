# Stage 1: resolved configs and the base model of each backbone; stage 2: one training run per
# backbone x task x variant x seed.


rule run_config:
    output:
        f"{RESULTS}/configs/{{backbone}}/{{task}}/{{variant}}.yaml",
    params:
        train=lambda w: resolve_run(EXPERIMENT, w.variant, f"{w.backbone}/{w.task}"),
    log:
        f"{RESULTS}/logs/configs/{{backbone}}_{{task}}_{{variant}}.log",
    threads: 1
    resources:
        runtime=1,
        mem_mb=200,
        gpus=0,
    run:
        write_yaml(output[0], params.train)


rule base_config:
    output:
        f"{RESULTS}/configs/{{backbone}}/base.yaml",
    params:
        backbone=lambda w: backbone_options(w.backbone),
    log:
        f"{RESULTS}/logs/configs/{{backbone}}_base.log",
    threads: 1
    resources:
        runtime=1,
        mem_mb=200,
        gpus=0,
    run:
        write_yaml(output[0], {"backbone": params.backbone})


rule base:
    input:
        f"{RESULTS}/configs/{{backbone}}/base.yaml",
    output:
        f"{RESULTS}/base/{{backbone}}.json",
    log:
        f"{RESULTS}/logs/base_{{backbone}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/base_{{backbone}}.tsv"
    threads: res("base", "threads", 1)
    conda:
        "../environment.yml"
    resources:
        runtime=res("base", "runtime", 30),
        mem_mb=res("base", "mem_mb", 4000),
        gpus=res("base", "gpus", 0),
        **slurm_res("base"),
    shell:
        "python -m guard.backbones --config {input} --out {output} --threads {threads} > {log} 2>&1"


if FETCH:

    rule fetch_prompts:
        output:
            "{prompt_file}",
        wildcard_constraints:
            prompt_file="|".join(re.escape(f) for f in FETCH),
        params:
            task=lambda w: FETCH[w.prompt_file],
        log:
            f"{RESULTS}/logs/fetch/{{prompt_file}}.log",
        threads: 1
        conda:
            "../environment.yml"
        resources:
            runtime=10,
            mem_mb=1000,
            gpus=0,
        shell:
            "python -m eval.prompts fetch --task {params.task} --out {output} > {log} 2>&1"


rule prompts_manifest:
    input:
        # with fetch_prompts every file (fetched where missing); without it only files that exist:
        # a missing one reaches the CLI, whose error names it and where to get it
        lambda w: [f for f in prompt_files(w.backbone, w.task) if FETCH or os.path.exists(f)],
    output:
        f"{RESULTS}/prompts/{{backbone}}_{{task}}.json",
    params:
        files=lambda w: prompt_files(w.backbone, w.task),
        format=lambda w: task_options(w.backbone, w.task)["reward"],
    log:
        f"{RESULTS}/logs/prompts_{{backbone}}_{{task}}.log",
    threads: 1
    conda:
        "../environment.yml"
    resources:
        runtime=5,
        mem_mb=1000,
        gpus=0,
    shell:
        "python -m eval.prompts manifest --task {params.format} --files {params.files} --out {output} > {log} 2>&1"


rule train:
    input:
        config=f"{RESULTS}/configs/{{backbone}}/{{task}}/{{variant}}.yaml",
        base=f"{RESULTS}/base/{{backbone}}.json",
        prompts=prompt_manifest,
    output:
        f"{RESULTS}/{{backbone}}/{{task}}/{{variant}}/seed{{seed}}/final.json",
    params:
        out=lambda w, output: os.path.dirname(output[0]),
        # more than one GPU or node: one data-parallel process per GPU (guard/distributed.py), a node's threads split among them
        launcher=lambda w, threads, resources: train_launcher(
            res("train", "nodes", 1), resources.gpus, resources.get("cpus_per_task", threads)
        ),
        threads=lambda w, threads, resources: max(1, threads // max(1, resources.gpus)),
    log:
        f"{RESULTS}/logs/train/{{backbone}}_{{task}}_{{variant}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{backbone}}_{{task}}_{{variant}}_seed{{seed}}.tsv"
    threads: res("train", "threads", 1)
    # a job stopped by its time limit, a preemption or a lost node is resubmitted and resumes from its
    # checkpoint (default: the profile's retries); by the main snakemake only: the one inside a SLURM job would
    # rerun the stopped trainer in the same allocation, into the time limit
    retries: res("train", "resubmissions", None) if workflow.is_main_process else None
    conda:
        "../environment.yml"
    resources:
        runtime=res("train", "runtime", 60),
        mem_mb=res("train", "mem_mb", 4000),
        gpus=res("train", "gpus", 0),
        **slurm_res("train"),
        **nodes_res("train"),
    # the launcher execs: the trainer, not a shell, gets SLURM's signals
    shell:
        "{params.launcher} guard.train --config {input.config} --seed {wildcards.seed} --out {params.out}"
        " --threads {params.threads} --on-config-change restart > {log} 2>&1"


# Stage 3: the fixed-seed evaluation images of every run (last checkpoint, EMA) and of the base
# model, each scored once per metric.


rule sample:
    input:
        config=f"{RESULTS}/configs/{{backbone}}/{{task}}/{{variant}}.yaml",
        run=f"{RESULTS}/{{backbone}}/{{task}}/{{variant}}/seed{{seed}}/final.json",
        prompts=prompt_manifest,
    output:
        directory(f"{RESULTS}/{{backbone}}/{{task}}/{{variant}}/seed{{seed}}/eval_images"),
    params:
        run=lambda w, input: os.path.dirname(input.run),
    log:
        f"{RESULTS}/logs/sample/{{backbone}}_{{task}}_{{variant}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sample/{{backbone}}_{{task}}_{{variant}}_seed{{seed}}.tsv"
    threads: res("sample", "threads", 1)
    conda:
        "../environment.yml"
    resources:
        runtime=res("sample", "runtime", 30),
        mem_mb=res("sample", "mem_mb", 4000),
        gpus=res("sample", "gpus", 0),
        **slurm_res("sample"),
    shell:
        "python -m guard.sample --config {input.config} --run {params.run} --out {output} --threads {threads} > {log} 2>&1"


rule sample_base:
    input:
        config=lambda w: f"{RESULTS}/configs/{w.backbone}/{w.task}/{first_variant(w.backbone, w.task)}.yaml",
        base=f"{RESULTS}/base/{{backbone}}.json",
        prompts=prompt_manifest,
    output:
        directory(f"{RESULTS}/{{backbone}}/{{task}}/base/eval_images"),
    log:
        f"{RESULTS}/logs/sample/{{backbone}}_{{task}}_base.log",
    benchmark:
        f"{RESULTS}/benchmarks/sample/{{backbone}}_{{task}}_base.tsv"
    threads: res("sample", "threads", 1)
    conda:
        "../environment.yml"
    resources:
        runtime=res("sample", "runtime", 30),
        mem_mb=res("sample", "mem_mb", 4000),
        gpus=res("sample", "gpus", 0),
        **slurm_res("sample"),
    shell:
        "python -m guard.sample --config {input.config} --out {output} --threads {threads} > {log} 2>&1"


rule score:
    input:
        images=f"{RESULTS}/{{backbone}}/{{task}}/{{run}}/eval_images",
        config=lambda w: f"{RESULTS}/configs/{w.backbone}/{w.task}/{first_variant(w.backbone, w.task)}.yaml",
    output:
        f"{RESULTS}/{{backbone}}/{{task}}/{{run}}/scores/summary.jsonl",
    params:
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{RESULTS}/logs/score/{{backbone}}_{{task}}_{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/score/{{backbone}}_{{task}}_{{run}}.tsv"
    threads: res("score", "threads", 1)
    conda:
        "../environment.yml"
    resources:
        runtime=res("score", "runtime", 30),
        mem_mb=res("score", "mem_mb", 4000),
        gpus=res("score", "gpus", 0),
        **slurm_res("score"),
    shell:
        "python -m eval.score --config {input.config} --images {input.images} --out {params.out}"
        " --threads {threads} > {log} 2>&1"


rule export_lora:
    input:
        config=f"{RESULTS}/configs/{{backbone}}/{{task}}/{{variant}}.yaml",
        run=f"{RESULTS}/{{backbone}}/{{task}}/{{variant}}/seed{{seed}}/final.json",
    output:
        directory(f"{RESULTS}/{{backbone}}/{{task}}/{{variant}}/seed{{seed}}/lora"),
    params:
        run=lambda w, input: os.path.dirname(input.run),
    log:
        f"{RESULTS}/logs/export/{{backbone}}_{{task}}_{{variant}}_seed{{seed}}.log",
    threads: 1
    conda:
        "../environment.yml"
    resources:
        runtime=res("sample", "runtime", 30),
        mem_mb=res("sample", "mem_mb", 4000),
        gpus=0,
        **slurm_res("sample"),
    shell:
        "python -m guard.export --config {input.config} --run {params.run} --out {output} --threads {threads} > {log} 2>&1"
