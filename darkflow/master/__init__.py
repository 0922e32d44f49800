"""Master darks (and biases): streaming robust combine, FITS layout, bias, incremental update.

Public API
----------
combine_files(paths, *, config, bias, allow_few, metas, progress, ...) -> MasterDark
    Stream row bands of the files (each opened once) through the numba kernels.
combine_files_with_training(paths, train, rows, ...) -> (MasterDark, MasterDark | None)
    The same, plus the master of the training frames over a band of rows, in the same pass.
combine_arrays(frames, *, config, meta, egain, ...) -> MasterDark
    The same kernels on in-memory frames (tests, notebooks, teaching).
write_master(master, path) -> Path / read_master(path) -> MasterDark
    Atomic FITS output with named plane extensions and provenance; exact round trip.
make_dark_current_master(dark, bias) -> MasterDark
    Bias-subtracted (dark-current) master with propagated uncertainty.
update_master(existing, new_paths, *, config, ...) -> MasterDark
    Merge new frames when the quality gates allow, otherwise rebuild.
main_combine(argv) -> int
    ``darkflow combine FILE... -o master.fits [--memory-limit 1GB] ...``.

Algorithm, noise model, outputs and file layout: ``docs/master.md``.
"""

from darkflow.master._bias import load_bias, make_dark_current_master
from darkflow.master._cli import main_combine, temperature_tolerance_c
from darkflow.master._combine import combine_arrays, combine_files, combine_files_with_training
from darkflow.master._fitsio import (
    NotAMasterError,
    as_written,
    forget_masters,
    output_of,
    read_master,
    read_master_cached,
    read_master_hashed,
    remember_master,
    write_master,
)
from darkflow.master._update import merge_gates, merge_masters, update_master

__all__ = [
    "NotAMasterError",
    "as_written",
    "combine_arrays",
    "combine_files",
    "combine_files_with_training",
    "forget_masters",
    "load_bias",
    "main_combine",
    "make_dark_current_master",
    "merge_gates",
    "merge_masters",
    "output_of",
    "read_master",
    "read_master_cached",
    "read_master_hashed",
    "remember_master",
    "temperature_tolerance_c",
    "update_master",
    "write_master",
]
