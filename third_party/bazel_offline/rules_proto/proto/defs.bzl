"""Offline stand-in for @rules_proto//proto:defs.bzl: the native proto rules under their names.

Bazel 4's @bazel_tools loads them from @rules_proto, which it would download from GitHub even for
a Python-only build. tfq_mixed builds no protos.
"""

proto_lang_toolchain = native.proto_lang_toolchain
proto_library = native.proto_library
