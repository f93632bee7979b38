# The README's two commands: `make demo` and `make test`. Both install the Debian packages
# that are missing (idempotent), configure, build, then run. CMake does the real work.
BUILD   ?= build
JOBS    ?= $(shell nproc)
CMAKE_FLAGS ?=
DEBS := build-essential cmake pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev \
        hdf5-tools libyaml-dev libcmocka-dev libopenblas-dev liblapacke-dev libcjson-dev \
        libstb-dev libjpeg-dev zlib1g-dev dataset-fashion-mnist \
        slurm-wlm munge libpmix-dev jq gnuplot-nox python3-venv python3-pip clang libclang-rt-14-dev libomp-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1

.PHONY: all deps configure build test sanitize test-cudasim fuzz fuzz-quick fuzz-build demo clean \
        format

all: build

deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	  grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	else echo "all Debian packages present"; fi

configure: deps
	cmake -S . -B $(BUILD) -DRCC_WERROR=$${CI:+ON} $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	$(MAKE) fuzz-quick

# The unit and MPI tests built with AddressSanitizer + UndefinedBehaviorSanitizer (CUDA
# off), leaks checked; any report fails its test. CI runs it after `make test` (.ci/run):
# the build and run add several minutes, kept out of the default suite.
# tests/sanitize/lsan.supp lists leaks inside Open MPI and
# libevent themselves, never in rcc-dist code; those are matched on full allocation stacks
# (fast_unwind_on_malloc=0), which only the MPI tests need, as only they start MPI.
SAN_BUILD ?= build-asan
SAN_ENV := LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitize/lsan.supp:print_suppressions=0 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
sanitize: deps
	cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DRCC_SANITIZE=ON -DRCC_ENABLE_CUDA=OFF \
	  -DRCC_WERROR=$${CI:+ON} $(CMAKE_FLAGS)
	cmake --build $(SAN_BUILD) -j $(JOBS)
	cd $(SAN_BUILD) && $(SAN_ENV) ASAN_OPTIONS=detect_leaks=1 \
	  ctest --output-on-failure -j $(JOBS) -L unit
	cd $(SAN_BUILD) && $(SAN_ENV) ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0 \
	  ctest --output-on-failure -j $(JOBS) -L mpi

# The `gpu` tests without a GPU: the CUDA backend, its kernels and the NCCL comm built
# against tests/cudasim, which runs the CUDA APIs we use on the CPU (docs/GPU.md says what
# that can and cannot tell), plus cudasim's own tests. CI runs it after `make test`
# (.ci/run). Passing here is not running on a GPU.
SIM_BUILD ?= build-cudasim
test-cudasim: deps
	cmake -S . -B $(SIM_BUILD) -DRCC_CUDASIM=ON -DRCC_WERROR=$${CI:+ON} $(CMAKE_FLAGS)
	cmake --build $(SIM_BUILD) -j $(JOBS)
	cd $(SIM_BUILD) && ctest --output-on-failure -j $(JOBS) -L 'gpu|cudasim'

# The libFuzzer targets of tests/fuzz (clang, ASan + UBSan), each run FUZZ_SECONDS by
# tests/fuzz/run.sh; a crash fails the run and leaves its input under /tmp/rcc-fuzz for
# tests/fuzz/regressions/. `make test` runs fuzz-quick (30 s each, about 4 minutes).
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 300
fuzz-build: deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DRCC_FUZZ=ON -DRCC_ENABLE_CUDA=OFF \
	  $(CMAKE_FLAGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_all

fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

fuzz-quick:
	$(MAKE) fuzz FUZZ_SECONDS=30

# The main job on the embedded default model: the three-stage cascade, its summary table,
# then the compressed model evaluated on all 10,000 test images.
demo: build
	./$(BUILD)/rcc-dist examples/clip-fmnist.yaml
	./$(BUILD)/rcc-dist eval --model runs/clip-fmnist/packed.safetensors --data fmnist:test

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cu')

clean:
	rm -rf $(BUILD)
