// The plugin ABI is a header; this file exists because a C target needs one source.
