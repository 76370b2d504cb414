//! Pure data and pure functions: the payload notation, addresses, endpoint
//! settings, the traffic log store and the session document. No tokio, no egui.

pub mod address;
pub mod budget;
pub mod display;
pub mod endpoint;
pub mod explain;
pub mod framing;
pub mod ignore;
pub mod impair;
pub mod lesson;
pub mod lifecycle;
pub mod log;
pub mod messages;
pub mod multicast;
pub mod payload;
pub mod placeholder;
pub mod proxy;
pub mod replay;
pub mod schedule;
pub mod session;
pub mod spill;
pub mod unix;

pub use address::{AddressError, HostPort};
pub use display::escape_controls;
pub use endpoint::{
    AutoReply, EndpointKind, EndpointSpec, KindTag, RelayTransport, Rule, SocketOptions,
    TlsClientSettings, TlsServerSettings, Trigger,
};
pub use log::{
    Direction, Entry, EntryKind, ErrorKind, FilteredView, LogBudget, LogCounters, LogFilter,
    NO_PEER, Overflow, TrafficLog,
};
pub use payload::{Notation, Payload, PayloadError};
pub use session::{LibraryItem, Session};
pub use unix::{MAX_UNIX_PATH, UnixName, UnixPath, UnixPathError};
