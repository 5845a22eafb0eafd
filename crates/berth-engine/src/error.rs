//! The engine's errors, each knowing the HTTP status Docker answers with.

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    /// Something named inside a container (a path) that is not there: 404 with the message as is.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidParameter(String),
    /// Docker answers 304 (already started / already stopped).
    #[error("not modified")]
    NotModified,
    #[error("failed to start container {id}: {message}")]
    StartFailed { id: String, message: String },
    #[error(transparent)]
    Image(#[from] berth_image::images::ImageError),
    #[error(transparent)]
    ImageContainer(#[from] berth_image::containers::ContainerError),
    #[error(transparent)]
    Spec(#[from] crate::ocispec::SpecError),
    #[error(transparent)]
    Record(#[from] crate::record::RecordError),
    #[error("container {id}: {source}")]
    Runtime {
        id: String,
        #[source]
        source: berth_runtime::container::Error,
    },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("monitor of {id}: {message}")]
    Monitor { id: String, message: String },
    /// Docker answers 403 for refusals on networks (pre-defined, active endpoints).
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Network(#[from] berth_network::NetworkError),
}

impl EngineError {
    /// The HTTP status Docker's API uses for this kind of error.
    pub fn status(&self) -> u16 {
        match self {
            EngineError::NoSuchContainer(_)
            | EngineError::NoSuchExec(_)
            | EngineError::NoSuchImage(_)
            | EngineError::NoSuchVolume(_)
            | EngineError::NotFound(_) => 404,
            EngineError::Conflict(_) => 409,
            EngineError::InvalidParameter(_) | EngineError::Spec(_) => 400,
            EngineError::NotModified => 304,
            EngineError::Forbidden(_) => 403,
            EngineError::Network(e) => match e {
                berth_network::NetworkError::NotFound(_) => 404,
                berth_network::NetworkError::Conflict(_) => 409,
                berth_network::NetworkError::Forbidden(_) => 403,
                berth_network::NetworkError::Invalid(_) => 400,
                _ => 500,
            },
            EngineError::Image(berth_image::images::ImageError::NotFound(_)) => 404,
            EngineError::ImageContainer(berth_image::containers::ContainerError::Image(
                berth_image::images::ImageError::NotFound(_),
            )) => 404,
            _ => 500,
        }
    }
}

pub fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> EngineError {
    let what = what.into();
    move |source| EngineError::Io { what, source }
}

pub type Result<T> = std::result::Result<T, EngineError>;
