# Cortex-M3 (thumb, no FPU) with Debian's gcc-arm-none-eabi and picolibc.
#   cmake -S . -B build-m3 -DCMAKE_TOOLCHAIN_FILE=devices/toolchains/cortex-m3.cmake \
#         -DAMP_CORE_ONLY=ON
# builds libamp-core.a for a microcontroller. The toolchain names only the
# CPU and the C library; the board (memory map, semihosting) is the
# firmware's business (devices/cortex-m/CMakeLists.txt).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)

# picolibc (not newlib): its stdio needs no _sbrk, so an image that never
# calls malloc really links none; its semihosting library ends QEMU with
# the program's exit status.
set(AMP_CORTEX_M_FLAGS "-mcpu=cortex-m3 -mthumb --specs=picolibc.specs")
set(CMAKE_C_FLAGS_INIT "${AMP_CORTEX_M_FLAGS} -ffunction-sections -fdata-sections")
set(CMAKE_ASM_FLAGS_INIT "${AMP_CORTEX_M_FLAGS}")
# (the C flags, --specs included, are on the link line already)
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,--gc-sections")
# Size is what counts on a microcontroller: -Os for every build type.
set(CMAKE_C_FLAGS_RELEASE_INIT "-Os -DNDEBUG")
set(CMAKE_C_FLAGS_RELWITHDEBINFO_INIT "-Os -g -DNDEBUG")
set(CMAKE_C_FLAGS_MINSIZEREL_INIT "-Os -DNDEBUG")

# Probing the compiler must not try to link a program (there is no board yet).
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
