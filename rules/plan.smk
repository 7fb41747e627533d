# What the experiment costs before it runs: `snakemake plan` (bench/plan.py; nothing is trained).


rule plan:
    output:
        md=f"{RESULTS}/plan.md",
        json=f"{RESULTS}/plan.json",
    params:
        throughput=config.get("plan", {}).get("throughput"),
        gpu_memory_gb=config.get("plan", {}).get("gpu_memory_gb", 80),
    log:
        f"{RESULTS}/logs/plan.log",
    threads: 1
    resources:
        runtime=10,
        mem_mb=4000,
        gpus=0,
    run:
        from bench.plan import write_plan

        write_plan(config, output.md.removesuffix(".md"), params.throughput, params.gpu_memory_gb)
