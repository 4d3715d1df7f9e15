module discovery-rs/tests/faults

go 1.22
