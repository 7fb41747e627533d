# Targets and helpers computed from the validated config.
import yaml

from guard.config import config_from_dict, resolve_variant

EXP = config["experiment"]
RESULTS = f"results/{EXP}"
VARIANTS = list(config["variants"])
SEEDS = [int(s) for s in config["seeds"]]

# Fail at load time, naming the key, if any variant does not resolve to a valid trainer config.
for _variant in VARIANTS:
    config_from_dict(resolve_variant(config, _variant))

wildcard_constraints:
    variant="|".join(VARIANTS),
    seed=r"\d+",


def write_yaml(path, data):
    """Write plain data as YAML (resolved configs the python -m entry points read)."""
    with open(path, "w") as f:
        yaml.safe_dump(dict(data), f, sort_keys=False)


def res(rule_name, key, default):
    """A per-rule resource from the config's `resources` section."""
    return config.get("resources", {}).get(rule_name, {}).get(key, default)


def base_weights():
    """The base model file the train rules depend on (the nano backbone's cached pretraining)."""
    return config["train"]["backbone"].get("weights", f"{RESULTS}/base/base.safetensors")


def run_finals():
    return expand(f"{RESULTS}/{{variant}}/seed{{seed}}/final.json", variant=VARIANTS, seed=SEEDS)


TABLES = ["main", "ablation", "paper_main"]
FIGURES = ["logratio_histograms", "logratio_per_step", "clip_fractions", "grad_norm", "training_curves",
           "gold_vs_proxy", "samples_over_training"]


def all_targets():
    return (
        expand(f"{RESULTS}/tables/{{t}}.{{ext}}", t=TABLES, ext=["csv", "md", "tex"])
        + expand(f"{RESULTS}/figures/{{f}}.{{ext}}", f=FIGURES, ext=["png", "pdf"])
    )
