// Package top is the engine of "corvid top": it polls memcached-protocol
// servers (corvid or memcached) for their stats, turns two successive
// samples into rates, and renders them as a bubbletea model.
//
// A Poller fetches one Sample ("stats", "stats slabs", "stats items" and
// the hottest keys: corvid's "stats hotkeys", or on a server without it a
// short "watch fetchers" window). Diff turns two samples into Rates. Model
// is the terminal UI; it fetches in tea.Cmds, so a slow or unreachable
// server never blocks the screen, and a server that cannot be reached is
// shown as down on its tab.
package top
