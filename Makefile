# The README's two commands: `make demo` and `make test`. Both install the Debian packages
# that are missing (idempotent), configure, build, then run. CMake does the real work.
BUILD   ?= build
JOBS    ?= $(shell nproc)
CMAKE_FLAGS ?=
DEBS := build-essential cmake pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev \
        hdf5-tools libyaml-dev libcmocka-dev libopenblas-dev liblapacke-dev libcjson-dev \
        libstb-dev libjpeg-dev zlib1g-dev dataset-fashion-mnist \
        slurm-wlm munge libpmix-dev jq gnuplot-nox
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1

.PHONY: all deps configure build test demo clean format

all: build

deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	  grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	else echo "all Debian packages present"; fi
# Optuna (PyPI) only for the optuna sweep tests, which skip without it; rcc-dist never needs it.
	@command -v optuna >/dev/null || { echo "installing optuna (pip)"; \
	  $(SUDO) python3 -m pip install -q --break-system-packages optuna || \
	  echo "optuna not installed: the optuna sweep tests will be skipped"; }

configure: deps
	cmake -S . -B $(BUILD) -DRCC_WERROR=$${CI:+ON} $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The main job on the embedded default model: the three-stage cascade, its summary table,
# then the compressed model evaluated on all 10,000 test images.
demo: build
	./$(BUILD)/rcc-dist examples/clip-fmnist.yaml
	./$(BUILD)/rcc-dist eval --model runs/clip-fmnist/packed.safetensors --data fmnist:test

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cu')

clean:
	rm -rf $(BUILD)
