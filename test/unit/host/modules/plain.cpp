// A shared library that is not a Membrane module at all.
extern "C" __attribute__((visibility("default"))) int plain_answer() { return 42; }
