# Thin wrapper: the two commands of the README, plus conveniences.
.PHONY: run test build bench clean

# Set up and run the main job.
run:
	@./tools/run.sh

# Set up and run every test (normal build, ASan+UBSan build, fuzzers).
test:
	@./tools/run-tests.sh

build:
	@./tools/bootstrap.sh
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j2

bench: build
	./build/tools/amp-bench/amp-bench codec
	./build/tools/amp-bench/amp-bench call
	./build/tools/amp-bench/amp-bench broker
	./build/tools/amp-bench/amp-bench pubsub

clean:
	rm -rf build build-asan build-fuzz
