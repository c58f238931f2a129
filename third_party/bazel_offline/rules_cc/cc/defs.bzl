"""Offline stand-in for @rules_cc//cc:defs.bzl: the native C++ rules under their rules_cc names.

Bazel 4's @bazel_tools loads these names from @rules_cc, which it would otherwise download from
GitHub, even for a Python-only build (py_test resolves the C++ toolchain for its launcher). Debian's
bazel-rules-cc 0.0.4 is too new for Bazel 4.2.3 (it needs `use_cpp_toolchain`). tfq_mixed builds no
C++, so the native rules are all it needs.
"""

cc_binary = native.cc_binary
cc_import = native.cc_import
cc_library = native.cc_library
cc_proto_library = native.cc_proto_library
cc_shared_library = getattr(native, "cc_shared_library", None)
cc_test = native.cc_test
cc_toolchain = native.cc_toolchain
cc_toolchain_suite = native.cc_toolchain_suite
fdo_prefetch_hints = native.fdo_prefetch_hints
fdo_profile = native.fdo_profile
objc_import = native.objc_import
objc_library = native.objc_library
