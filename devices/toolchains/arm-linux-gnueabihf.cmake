# 32-bit ARM Linux (armhf) with Debian's gcc-arm-linux-gnueabihf.
#   cmake -S devices/sensor -B build-armhf \
#         -DCMAKE_TOOLCHAIN_FILE=devices/toolchains/arm-linux-gnueabihf.cmake
# Programs are linked statically, so that they run under qemu-arm (or on a
# board) without an armhf C library installed beside them.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_FIND_ROOT_PATH /usr/arm-linux-gnueabihf)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
