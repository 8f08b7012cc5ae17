//! The in-app inbox: ad-hoc notices, listing, read state, deletion. Commands that name
//! several notifications change all of them or, if one is unknown, none.

use super::notices::Notifier;
use super::Service;
use crate::error::user_error;
use crate::input::{check_body, check_text, limits};
use crate::model::{Kind, Notification};
use crate::store::{self, BrokenRow, InboxFilter, Ops};

fn require_all(ops: &mut dyn Ops, ids: &[i64]) -> anyhow::Result<()> {
    if let Some(id) = ops.first_missing_notification(ids)? {
        return Err(user_error(format!(
            "unknown notification {id}: nothing was changed"
        )));
    }
    Ok(())
}

impl Service {
    /// `send`: an ad-hoc notice (kind `custom`).
    pub fn send_custom(
        &mut self,
        user_key: &str,
        title: &str,
        body: &str,
        email: bool,
    ) -> anyhow::Result<i64> {
        if title.trim().is_empty() {
            return Err(user_error("a notice needs a title (--title)"));
        }
        let title = check_text("the title", title, limits::TITLE)?;
        let body = check_body("the body", body, limits::BODY)?;
        let notifier = Notifier::new(&self.config, &self.templates, &self.reporter, self.clock.now())?;
        store::write(&mut *self.store, |ops| {
            let u = ops.find_user(user_key)?;
            notifier.custom(ops, &u, &title, &body, email)
        })
    }

    pub fn inbox(
        &mut self,
        user_key: &str,
        filter: &InboxFilter,
        each: &mut dyn FnMut(Result<Notification, BrokenRow>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        if let Some(k) = &filter.kind {
            k.parse::<Kind>().map_err(|e| user_error(e.to_string()))?;
        }
        let user = self.store.find_user(user_key)?;
        self.store.inbox(user.id, filter, each)
    }

    pub fn notification(&mut self, id: i64) -> anyhow::Result<Notification> {
        self.store
            .notification(id)?
            .ok_or_else(|| user_error(format!("unknown notification {id}")))
    }

    /// (user id, unread count)
    pub fn unread_count(&mut self, user_key: &str) -> anyhow::Result<(i64, i64)> {
        let user = self.store.find_user(user_key)?;
        Ok((user.id, self.store.unread_count(user.id)?))
    }

    pub fn mark_read(&mut self, ids: &[i64]) -> anyhow::Result<usize> {
        let now = self.now();
        store::write(&mut *self.store, |ops| {
            require_all(ops, ids)?;
            ops.mark_read(ids, now)
        })
    }

    pub fn mark_all_read(&mut self, user_key: &str) -> anyhow::Result<usize> {
        let now = self.now();
        store::write(&mut *self.store, |ops| {
            let user = ops.find_user(user_key)?;
            ops.mark_all_read(user.id, now)
        })
    }

    pub fn mark_unread(&mut self, ids: &[i64]) -> anyhow::Result<usize> {
        store::write(&mut *self.store, |ops| {
            require_all(ops, ids)?;
            ops.mark_unread(ids)
        })
    }

    /// Delete notices; their pending deliveries go with them (the user dismissed them).
    pub fn delete_notifications(&mut self, ids: &[i64]) -> anyhow::Result<usize> {
        store::write(&mut *self.store, |ops| {
            require_all(ops, ids)?;
            ops.delete_notifications(ids)
        })
    }

    /// Delete a user's read notices, keeping those whose delivery has not finished.
    pub fn clear_read(&mut self, user_key: &str) -> anyhow::Result<usize> {
        store::write(&mut *self.store, |ops| {
            let user = ops.find_user(user_key)?;
            ops.clear_read(user.id)
        })
    }
}
