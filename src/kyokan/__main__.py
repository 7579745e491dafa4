"""``python -m kyokan``: the same command line as ``kyokan`` — what launchers run
(``torchrun -m kyokan train sft …``, ``accelerate launch -m kyokan …``, submitit/SLURM jobs)."""

from kyokan.cli import main

if __name__ == "__main__":
    main()
