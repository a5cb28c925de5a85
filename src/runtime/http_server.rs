//! Serving warp routes from inside an actor: the server runs as a task on an already bound
//! listener, stops gracefully when its shutdown sender fires (or is dropped), and tells its
//! actor when it ended on its own — one way for every HTTP server of the tree (internal API,
//! webhooks).

use std::convert::Infallible;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use warp::Filter;

/// A running server: fire (or drop) `shutdown` to stop it; `task` ends when it stopped.
#[derive(Debug)]
pub struct RunningServer {
    /// Stops the server gracefully.
    pub shutdown: oneshot::Sender<()>,
    /// The server's task.
    pub task: tokio::task::JoinHandle<()>,
}

/// Serves `routes` on `listener` until the shutdown fires; `ended` runs when the server stopped
/// (for an actor: a message to itself, so an unexpected end is seen).
pub fn serve<F>(listener: TcpListener, routes: F, ended: impl FnOnce() + Send + 'static) -> RunningServer
where
    F: Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone + Send + Sync + 'static,
{
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        warp::serve(routes)
            .incoming(listener)
            .graceful(async {
                let _ = stopped.await;
            })
            .run()
            .await;
        ended();
    });
    RunningServer { shutdown, task }
}
