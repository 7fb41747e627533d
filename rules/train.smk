# Stage 1: the experiment's resolved config and base model; stage 2: one training run per variant x seed.


rule experiment_config:
    output:
        f"{RESULTS}/experiment.yaml",
    params:
        experiment=config,
    log:
        f"{RESULTS}/logs/experiment_config.log",
    threads: 1
    resources:
        runtime=1,
        mem_mb=200,
        gpus=0,
    run:
        write_yaml(output[0], params.experiment)


rule variant_config:
    output:
        f"{RESULTS}/configs/{{variant}}.yaml",
    params:
        train=lambda w: resolve_variant(config, w.variant),
    log:
        f"{RESULTS}/logs/configs/{{variant}}.log",
    threads: 1
    resources:
        runtime=1,
        mem_mb=200,
        gpus=0,
    run:
        write_yaml(output[0], params.train)


rule base_config:
    output:
        f"{RESULTS}/configs/base.yaml",
    params:
        backbone=config["train"]["backbone"],
    log:
        f"{RESULTS}/logs/configs/base.log",
    threads: 1
    resources:
        runtime=1,
        mem_mb=200,
        gpus=0,
    run:
        write_yaml(output[0], {"backbone": params.backbone})


rule base:
    input:
        f"{RESULTS}/configs/base.yaml",
    output:
        base_weights(),
    log:
        f"{RESULTS}/logs/base.log",
    benchmark:
        f"{RESULTS}/benchmarks/base.tsv"
    threads: res("base", "threads", 1)
    conda:
        "../environment.yml"
    resources:
        runtime=res("base", "runtime", 30),
        mem_mb=res("base", "mem_mb", 4000),
        gpus=res("base", "gpus", 0),
    shell:
        "python -m guard.backbones --config {input} --threads {threads} > {log} 2>&1"


rule train:
    input:
        config=f"{RESULTS}/configs/{{variant}}.yaml",
        base=base_weights(),
    output:
        f"{RESULTS}/{{variant}}/seed{{seed}}/final.json",
    params:
        out=lambda w: f"{RESULTS}/{w.variant}/seed{w.seed}",
    log:
        f"{RESULTS}/logs/train/{{variant}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{variant}}_seed{{seed}}.tsv"
    threads: res("train", "threads", 1)
    conda:
        "../environment.yml"
    resources:
        runtime=res("train", "runtime", 60),
        mem_mb=res("train", "mem_mb", 4000),
        gpus=res("train", "gpus", 0),
    shell:
        "python -m guard.train --config {input.config} --seed {wildcards.seed} --out {params.out}"
        " --threads {threads} --on-config-change restart > {log} 2>&1"
