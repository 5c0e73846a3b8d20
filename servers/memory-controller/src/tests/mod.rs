//! Unit tests that need more than one module: the v2 backend and the
//! service against a directory laid out like cgroupfs v2, and the v1 backend
//! and the service on this host's real v1 memory hierarchy.

mod fake_v2;
mod service_v2;
mod shared_v2;
mod v1_real;
