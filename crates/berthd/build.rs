//! berth-monitor is linked as a position-dependent executable: one runs per container,
//! and a PIE's relocated read-only data (here ~256 KiB of GOT and .data.rel.ro) becomes
//! private dirty memory in every one of them; linked at a fixed address those pages stay
//! clean and shared. Its libraries, heap and stack are still randomised.
fn main() {
    println!("cargo:rustc-link-arg-bin=berth-monitor=-no-pie");
}
