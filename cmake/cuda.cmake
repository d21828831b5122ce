# Hopper only: wgmma and TMA need sm_90a. Builds on machines without a GPU.
enable_language(CUDA)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
find_package(CUDAToolkit REQUIRED)
set(CMAKE_CUDA_FLAGS "${CMAKE_CUDA_FLAGS} -gencode arch=compute_90a,code=sm_90a --expt-relaxed-constexpr -lineinfo")

# Tensor parallelism (--tensor-parallel) all-reduces over NCCL; on by default where NCCL is found
# (scripts/setup installs it from PyPI for CUDA builds). The CPU presets never look for it.
list(APPEND CMAKE_MODULE_PATH ${CMAKE_CURRENT_LIST_DIR})
find_package(NCCL)
option(DELTAINFER_NCCL "Tensor parallelism over NCCL (CUDA backend)" ${NCCL_FOUND})
if(DELTAINFER_NCCL AND NOT NCCL_FOUND)
  message(FATAL_ERROR "DELTAINFER_NCCL is on but NCCL was not found: pip install nvidia-nccl-cu13 (scripts/setup)")
endif()
