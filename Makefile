# prep: everything runs from a project-local virtual environment made here from plain Python.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench eval-speech eval-blur calibrate-blur calibrate-identity sample clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev,identity,ray]'
	@touch $(STAMP)

# The main job on the project's own sample clip: a vertical phone-style video, face off-centre.
demo: setup
	$(BIN)/prep crop sample_data/astronaut_vertical.mp4 -o out/demo --report out/demo/run.json

# One test worker per core, each with one BLAS/OpenMP thread (as prep's own pool shares the cores out).
# prep is byte-compiled first: with PYTHONDONTWRITEBYTECODE set (as on this project's machines)
# every process the suite starts (pool and Ray workers, CLI runs) would compile it again.
test: setup
	$(BIN)/python -m compileall -q prep
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadscope --durations=15

bench: setup
	$(BIN)/python bench/bench_crop.py
	$(BIN)/python bench/bench_blur.py
	$(BIN)/python bench/bench_pairs.py
	$(BIN)/python bench/bench_split.py
	$(BIN)/python bench/bench_speech.py
	$(BIN)/python bench/bench_runner.py

# Speech check accuracy on edits of the shared speech clips (writes bench/speech_results.md).
eval-speech: setup
	$(BIN)/python bench/eval_speech.py

# Blur-score quality on the real data in ../shared/data (writes bench/blur_results.md).
eval-blur: setup
	$(BIN)/python bench/eval_blur.py

# Where presets/blur.toml's thresholds come from (fitted on the shared videos' faces only).
calibrate-blur: setup
	$(BIN)/python bench/calibrate_blur.py

# Where --person's threshold comes from: same/different-person pairs from the shared data
# (writes bench/identity_results.md).
calibrate-identity: setup
	$(BIN)/python bench/calibrate_identity.py

# Rebuild sample_data/astronaut_vertical.mp4 from scikit-image's astronaut photo.
sample: setup
	$(BIN)/python sample_data/make_sample.py

clean:
	rm -rf out .pytest_cache
