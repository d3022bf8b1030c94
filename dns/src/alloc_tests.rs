//! The hot path does not allocate: parsing a name and selecting with
//! `closest`, `rr`, `all` or `instance-N` over a snapshot of the in-memory
//! directory. Counted by a global allocator wrapper, per thread, so that
//! tests running in parallel do not disturb one another.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::name::{parse_labels, NameOutcome};
use crate::select::{select, Asker, SelectOutcome};
use crate::test_support::instance;
use crate::{Location, MemoryDirectory, NodeId, PolicyConfig, RrTable, RttEstimate, Zone};

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn parse_and_select_do_not_allocate() {
    let directory = MemoryDirectory::new(NodeId::new("n0"));
    directory.update(|u| {
        u.set_location(&NodeId::new("n0"), Location { lat: 52.5, lon: 13.4 })
            .expect("ok");
        for n in 0..10u32 {
            let node = NodeId::new(&format!("n{n}"));
            u.register(instance("web", "prod", n, node.as_str())).expect("ok");
            u.set_location(
                &node,
                Location {
                    lat: 48.0 + f64::from(n),
                    lon: 11.0,
                },
            )
            .expect("ok");
            if n % 3 != 0 {
                u.set_rtt(
                    &node,
                    Some(RttEstimate::measured(Duration::from_millis(u64::from(5 + n)))),
                );
            }
        }
    });
    let zone = Zone::default();
    let rr = RrTable::new(4096, 1);
    let config = PolicyConfig::default();
    let asker = Asker::from_address(IpAddr::V4(Ipv4Addr::new(10, 18, 0, 7)));
    let names: [&[&[u8]]; 5] = [
        &[b"closest", b"ms2", b"grove"],
        &[b"CLOSEST", b"ms2", b"web", b"prod", b"cam", b"edge", b"svc", b"grove"],
        &[b"rr", b"ms2", b"web", b"grove"],
        &[b"all", b"ms2", b"grove"],
        &[b"instance-7", b"ms2", b"web", b"prod", b"grove"],
    ];
    let mut answered = 0;
    let mut run = || {
        let snapshot = directory.snapshot();
        for labels in names {
            let NameOutcome::Query(query) = parse_labels(labels.iter().copied(), &zone) else {
                panic!("not a query");
            };
            if let SelectOutcome::Selected(selection) = select(&query, &asker, &*snapshot, &rr, &config) {
                answered += selection.chosen().count();
            }
        }
    };
    run(); // warm up (the shared empty list, thread-locals)
    let counted = allocations_during(|| {
        std::hint::black_box(Vec::<u8>::with_capacity(16));
    });
    assert_eq!(counted, 1, "the counter counts");
    assert_eq!(allocations_during(&mut run), 0);
    assert_eq!(answered, 2 * (1 + 1 + 1 + 10 + 1));
}
