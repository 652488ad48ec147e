# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_reimage_global_optspecs
    string join \n pool= v/verbose q/quiet json h/help V/version
end

function __fish_reimage_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_reimage_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_reimage_using_subcommand
    set -l cmd (__fish_reimage_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c reimage -n "__fish_reimage_needs_command" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_needs_command" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_needs_command" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_needs_command" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_needs_command" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_needs_command" -s V -l version -d 'Print version'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "init" -d 'Prepare a pool (optionally inside a loop-mounted btrfs image)'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "import" -d 'Transcode RPM files into extent packages in the pool'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "packages" -d 'List the extent packages in the pool'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "compose" -d 'Compose a read-only /usr view from a package list'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "views" -d 'List the views in the pool'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "rm-view" -d 'Delete a view'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "list" -d 'List the packages of a view (or any /usr tree), like rpm -qa'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "query" -d 'Query a view\'s packages: -f PATH, -l PKG, -i PKG, --provides/--requires PKG, --whatprovides CAP'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "diff" -d 'Package (and with --files, file) differences between two views'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "verify" -d 'Check every file of a view against its package header, like rpm -V (exit 1 on mismatch)'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "dedupe" -d 'Share identical content across extent packages (FIDEDUPERANGE; rebuilds big-extent packages)'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "usage" -d 'Bytes referenced, shared and exclusive per package and view, counted like compsize'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "gc" -d 'Remove extent packages no view or image manifest references; clean tmp/'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "publish" -d 'Publish an image version into a repository (or --prune it)'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "sync" -d 'Bring the pool to an image version from a repository (rsync, ssh, path, http)'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "fsck" -d 'Check the pool: every package against its index and header, every view complete'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "deploy" -d 'Make a bootable deployment of a view, the default for the next boot'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "status" -d 'The deployments of a system: booted, default, pinned, package diffs'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "upgrade" -d 'Sync the image the system follows, compose its new version from the view in use, deploy it'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "apply-live" -d 'Make the default (staged) deployment\'s view the running /usr now, without a reboot'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "rollback" -d 'Make the previous deployment the default again'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "pin" -d 'Keep a deployment whatever the retention setting'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "unpin" -d 'Let retention remove a deployment again'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "undeploy" -d 'Remove one deployment (not the booted one, not the default, not a pinned one)'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "cleanup" -d 'Remove the deployments retention does not keep'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "finalize" -d 'Merge /etc into the staged deployment again (at shutdown, from reimage-finalize.service)'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "etc" -d 'The history of /etc: commit, log, diff, revert; sync into another deployment'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "install" -d 'Make a bootable disk from packages: GPT, ESP with systemd-boot, btrfs with the pool and deployment 1'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "boot" -d 'Boot entries: check for a fallback at boot, or sync the ESP with the state record'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "health" -d 'Run the health checks of /etc/reimage/health.d (boot assessment); exit 1 when a required one fails'
complete -c reimage -n "__fish_reimage_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reimage -n "__fish_reimage_using_subcommand init" -l image -d 'Make a btrfs filesystem in this image file and loop-mount it at the pool path; with an existing image, re-mount it (e.g. after a reboot)' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand init" -l size -d 'Size of a new image, e.g. 2G, 512M (needed when the image does not exist)' -r
complete -c reimage -n "__fish_reimage_using_subcommand init" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand init" -l allow-copy -d 'Allow a pool on a filesystem that cannot reflink: data is copied'
complete -c reimage -n "__fish_reimage_using_subcommand init" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand init" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand init" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand init" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand import" -s j -l jobs -d 'Packages imported in parallel (default: number of CPUs)' -r
complete -c reimage -n "__fish_reimage_using_subcommand import" -l keyring -d 'Require a valid header-only signature by a key in this file (armored OpenPGP public keys)' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand import" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand import" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand import" -l replace -d 'Import packages the pool already holds again and replace its copies (the repair for a package `fsck` reports damaged)'
complete -c reimage -n "__fish_reimage_using_subcommand import" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand import" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand import" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand import" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand packages" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand packages" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand packages" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand packages" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand packages" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand compose" -l list -d 'Read packages from FILE (one per line, `#` comments)' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand compose" -l from -d 'Start from this view and apply only the package difference. Without it, compose starts from the view sharing the most packages with the list (when that is more than half of it)' -r
complete -c reimage -n "__fish_reimage_using_subcommand compose" -l passwd -d 'passwd file for owner names the view\'s own files do not define' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand compose" -l group -d 'group file for group names the view\'s own files do not define' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand compose" -l relocate -d 'Map paths outside /usr: --relocate /opt/foo=/usr/lib/foo (repeatable)' -r
complete -c reimage -n "__fish_reimage_using_subcommand compose" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand compose" -l no-base -d 'Compose the whole view, not from the view sharing the most packages'
complete -c reimage -n "__fish_reimage_using_subcommand compose" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand compose" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand compose" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand compose" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand compose" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand views" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand views" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand views" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand views" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand views" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand rm-view" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand rm-view" -l no-wait -d 'Fail at once if another reimage writer holds the pool'
complete -c reimage -n "__fish_reimage_using_subcommand rm-view" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand rm-view" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand rm-view" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand rm-view" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand list" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand list" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand list" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand list" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand list" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand query" -s f -l file -d 'Which package owns PATH (like rpm -qf)' -r
complete -c reimage -n "__fish_reimage_using_subcommand query" -s l -l list -d 'The files of PKG (like rpm -ql)' -r
complete -c reimage -n "__fish_reimage_using_subcommand query" -s i -l info -d 'Information about PKG (like rpm -qi)' -r
complete -c reimage -n "__fish_reimage_using_subcommand query" -l provides -d 'What PKG provides' -r
complete -c reimage -n "__fish_reimage_using_subcommand query" -l requires -d 'What PKG requires' -r
complete -c reimage -n "__fish_reimage_using_subcommand query" -l whatprovides -d 'Which packages provide CAP (`NAME`, `"NAME >= VERSION"`, or a path)' -r
complete -c reimage -n "__fish_reimage_using_subcommand query" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand query" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand query" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand query" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand query" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand diff" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand diff" -l files -d 'Also list files added, removed and changed (from the headers alone)'
complete -c reimage -n "__fish_reimage_using_subcommand diff" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand diff" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand diff" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand diff" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand verify" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand verify" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand verify" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand verify" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand verify" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand dedupe" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand dedupe" -l dry-run -d 'Say what would be shared and rebuilt; change nothing'
complete -c reimage -n "__fish_reimage_using_subcommand dedupe" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand dedupe" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand dedupe" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand dedupe" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand dedupe" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand usage" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand usage" -l views-only -d 'Only the pool totals and the views (no per-package rows)'
complete -c reimage -n "__fish_reimage_using_subcommand usage" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand usage" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand usage" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand usage" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand gc" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand gc" -l dry-run -d 'Say what would be removed; change nothing'
complete -c reimage -n "__fish_reimage_using_subcommand gc" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand gc" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand gc" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand gc" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand gc" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand publish" -l list -d 'Read `.rpm` paths from FILE (one per line, relative to FILE\'s directory)' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand publish" -l deltas-from -d 'Also write static deltas from this published version (repeatable)' -r
complete -c reimage -n "__fish_reimage_using_subcommand publish" -l sign -d 'Sign the manifest with this armored OpenPGP secret key (detached, VERSION.json.sig)' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand publish" -l delta-level -d 'zstd level of static deltas' -r
complete -c reimage -n "__fish_reimage_using_subcommand publish" -s j -l jobs -d 'Packages imported in parallel (default: number of CPUs)' -r
complete -c reimage -n "__fish_reimage_using_subcommand publish" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand publish" -l prune -d 'Remove packages and deltas that no manifest uses'
complete -c reimage -n "__fish_reimage_using_subcommand publish" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand publish" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand publish" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand publish" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand sync" -l compose -d 'Compose this view from the synced version (incrementally from the image\'s newest view)' -r
complete -c reimage -n "__fish_reimage_using_subcommand sync" -l keyring -d 'Require the manifest to be signed by a key in FILE (armored OpenPGP public keys)' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand sync" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand sync" -l no-deltas -d 'Do not use static deltas'
complete -c reimage -n "__fish_reimage_using_subcommand sync" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand sync" -l allow-downgrade -d 'Accept a version older than the newest the pool already holds'
complete -c reimage -n "__fish_reimage_using_subcommand sync" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand sync" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand sync" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand sync" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -l sysroot -d 'Also check the system at DIR (the mounted top level of its btrfs): the state record, its deployments and their views, the boot entries. On a running reimage system its own layout is checked without this' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -l esp -d 'Offline: the ESP to compare the boot entries on (as `deploy --esp`)' -r
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -l repair -d 'Remove what is provably garbage: tmp/ content and temporary files left by interrupted writes. Never packages or views'
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -l full -d 'Also check every file against its header\'s file digest (slower)'
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -l no-wait -d 'With --repair: fail at once if another writer holds the pool'
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand deploy" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand deploy" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand deploy" -l kernel-arg -d 'An extra kernel command line argument of its boot entry (repeatable)' -r
complete -c reimage -n "__fish_reimage_using_subcommand deploy" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand deploy" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand deploy" -l no-default -d 'Stage it only: the default for the next boot stays as it is'
complete -c reimage -n "__fish_reimage_using_subcommand deploy" -l no-cleanup -d 'Do not remove the deployments retention no longer keeps'
complete -c reimage -n "__fish_reimage_using_subcommand deploy" -l diskless -d 'Boot it diskless: the initrd copies it into RAM and lets the disk go (`reimage.toram` on its kernel command line; docs/live.md)'
complete -c reimage -n "__fish_reimage_using_subcommand deploy" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand deploy" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand deploy" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand deploy" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand status" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand status" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand status" -l root -d 'The running root whose live /usr to report (default `/` on a running system; for a deployment mounted elsewhere, as `apply-live --root`)' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand status" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand status" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand status" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand status" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand status" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand status" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand upgrade" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand upgrade" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand upgrade" -l source -d 'Fetch from here instead of the source the system follows (a mirror)' -r
complete -c reimage -n "__fish_reimage_using_subcommand upgrade" -l keyring -d 'Require the manifest to be signed by a key in FILE (instead of the keyring recorded at install)' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand upgrade" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand upgrade" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand upgrade" -l check -d 'Only say what would change: the package changes and the bytes to fetch'
complete -c reimage -n "__fish_reimage_using_subcommand upgrade" -l no-deltas -d 'Do not use static deltas'
complete -c reimage -n "__fish_reimage_using_subcommand upgrade" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand upgrade" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand upgrade" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand upgrade" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand apply-live" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand apply-live" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand apply-live" -l deployment -d 'The deployment whose view to apply (default: the default one); it becomes the default for the next boot' -r
complete -c reimage -n "__fish_reimage_using_subcommand apply-live" -l root -d 'The running root whose /usr is switched (default `/`; another one is a booted deployment mounted there, e.g. in a test\'s mount namespace)' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand apply-live" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand apply-live" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand apply-live" -l allow-replacement -d 'Apply even when packages of the running /usr are upgraded, downgraded, rebuilt or removed (the processes still using the old files are listed)'
complete -c reimage -n "__fish_reimage_using_subcommand apply-live" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand apply-live" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand apply-live" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand apply-live" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand rollback" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand rollback" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand rollback" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand rollback" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand rollback" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand rollback" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand rollback" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand rollback" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand pin" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand pin" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand pin" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand pin" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand pin" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand pin" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand pin" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand pin" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand unpin" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand unpin" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand unpin" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand unpin" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand unpin" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand unpin" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand unpin" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand unpin" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand undeploy" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand undeploy" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand undeploy" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand undeploy" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand undeploy" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand undeploy" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand undeploy" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand undeploy" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand cleanup" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand cleanup" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand cleanup" -l keep -d 'Keep this many deployments besides the booted, the default and the pinned ones (remembered; default 2)' -r
complete -c reimage -n "__fish_reimage_using_subcommand cleanup" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand cleanup" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand cleanup" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand cleanup" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand cleanup" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand cleanup" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand finalize" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand finalize" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand finalize" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand finalize" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand finalize" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand finalize" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand finalize" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand finalize" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and not __fish_seen_subcommand_from commit log diff revert sync help" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand etc; and not __fish_seen_subcommand_from commit log diff revert sync help" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand etc; and not __fish_seen_subcommand_from commit log diff revert sync help" -l deployment -d 'The deployment whose /etc (default: the booted one; offline: the default)' -r
complete -c reimage -n "__fish_reimage_using_subcommand etc; and not __fish_seen_subcommand_from commit log diff revert sync help" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand etc; and not __fish_seen_subcommand_from commit log diff revert sync help" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and not __fish_seen_subcommand_from commit log diff revert sync help" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and not __fish_seen_subcommand_from commit log diff revert sync help" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and not __fish_seen_subcommand_from commit log diff revert sync help" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and not __fish_seen_subcommand_from commit log diff revert sync help" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and not __fish_seen_subcommand_from commit log diff revert sync help" -f -a "commit" -d 'Save /etc as a read-only snapshot (its history; the oldest beyond --limit go)'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and not __fish_seen_subcommand_from commit log diff revert sync help" -f -a "log" -d 'List the commits of /etc'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and not __fish_seen_subcommand_from commit log diff revert sync help" -f -a "diff" -d 'What changed in /etc since commit REV (default: the newest)'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and not __fish_seen_subcommand_from commit log diff revert sync help" -f -a "revert" -d 'Make /etc commit REV again'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and not __fish_seen_subcommand_from commit log diff revert sync help" -f -a "sync" -d 'Carry this /etc\'s changes into deployment ID (e.g. a rollback target)'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and not __fish_seen_subcommand_from commit log diff revert sync help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from commit" -s m -l message -d 'What changed' -r
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from commit" -l limit -d 'Commits kept' -r
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from commit" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from commit" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from commit" -l deployment -d 'The deployment whose /etc (default: the booted one; offline: the default)' -r
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from commit" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from commit" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from commit" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from commit" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from commit" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from commit" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from log" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from log" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from log" -l deployment -d 'The deployment whose /etc (default: the booted one; offline: the default)' -r
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from log" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from log" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from log" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from log" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from log" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from log" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from diff" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from diff" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from diff" -l deployment -d 'The deployment whose /etc (default: the booted one; offline: the default)' -r
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from diff" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from diff" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from diff" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from diff" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from diff" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from diff" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from revert" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from revert" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from revert" -l deployment -d 'The deployment whose /etc (default: the booted one; offline: the default)' -r
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from revert" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from revert" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from revert" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from revert" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from revert" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from revert" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from sync" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from sync" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from sync" -l deployment -d 'The deployment whose /etc (default: the booted one; offline: the default)' -r
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from sync" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from sync" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from sync" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from sync" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from sync" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from sync" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from help" -f -a "commit" -d 'Save /etc as a read-only snapshot (its history; the oldest beyond --limit go)'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from help" -f -a "log" -d 'List the commits of /etc'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from help" -f -a "diff" -d 'What changed in /etc since commit REV (default: the newest)'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from help" -f -a "revert" -d 'Make /etc commit REV again'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from help" -f -a "sync" -d 'Carry this /etc\'s changes into deployment ID (e.g. a rollback target)'
complete -c reimage -n "__fish_reimage_using_subcommand etc; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reimage -n "__fish_reimage_using_subcommand install" -l disk -d 'The disk: an image file (made new) or a block device (written over)' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand install" -l size -d 'Size of a new disk image' -r
complete -c reimage -n "__fish_reimage_using_subcommand install" -l esp-size -d 'Size of the EFI system partition' -r
complete -c reimage -n "__fish_reimage_using_subcommand install" -l list -d 'A package list (one spec per line) choosing among the packages' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand install" -l kernel-arg -d 'A kernel command line argument of the boot entry (repeatable), e.g. console=ttyS0' -r
complete -c reimage -n "__fish_reimage_using_subcommand install" -l from -d 'Install a published image instead: SOURCE IMAGE [VERSION] (as `sync`); later updates follow it' -r
complete -c reimage -n "__fish_reimage_using_subcommand install" -l view -d 'The view\'s name (default: system)' -r
complete -c reimage -n "__fish_reimage_using_subcommand install" -l tries -d 'Tries a new boot entry gets before systemd-boot falls back' -r
complete -c reimage -n "__fish_reimage_using_subcommand install" -l timeout -d 'systemd-boot\'s menu timeout in seconds' -r
complete -c reimage -n "__fish_reimage_using_subcommand install" -l keyring -d 'Require package (or, with --from, manifest) signatures by keys in this file' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand install" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand install" -l diskless -d 'Boot diskless: the initrd copies the deployment into RAM and lets the disk go (`reimage.toram`; docs/live.md)'
complete -c reimage -n "__fish_reimage_using_subcommand install" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand install" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand install" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand install" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and not __fish_seen_subcommand_from check sync help" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand boot; and not __fish_seen_subcommand_from check sync help" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and not __fish_seen_subcommand_from check sync help" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and not __fish_seen_subcommand_from check sync help" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and not __fish_seen_subcommand_from check sync help" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and not __fish_seen_subcommand_from check sync help" -f -a "check" -d 'At boot: if systemd-boot fell back from a default with no tries left, mark it failed and make the booted deployment the default'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and not __fish_seen_subcommand_from check sync help" -f -a "sync" -d 'Bring the ESP\'s entries in line with the state record'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and not __fish_seen_subcommand_from check sync help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from check" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from check" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from check" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from check" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from check" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from check" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from check" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from sync" -l sysroot -d 'The mounted top level (subvolid=5) of a reimage system\'s btrfs; without it, the running system' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from sync" -l esp -d 'Offline: the ESP to write boot entries to instead of the system\'s own (a mounted directory, or IMAGE[@@OFFSET] written with mtools)' -r
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from sync" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from sync" -l no-wait -d 'Fail at once if another reimage writer holds the pool, instead of waiting'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from sync" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from sync" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from sync" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from sync" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from help" -f -a "check" -d 'At boot: if systemd-boot fell back from a default with no tries left, mark it failed and make the booted deployment the default'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from help" -f -a "sync" -d 'Bring the ESP\'s entries in line with the state record'
complete -c reimage -n "__fish_reimage_using_subcommand boot; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reimage -n "__fish_reimage_using_subcommand health" -l root -d 'The root whose checks run (default: /)' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand health" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand health" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand health" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand health" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand health" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "init" -d 'Prepare a pool (optionally inside a loop-mounted btrfs image)'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "import" -d 'Transcode RPM files into extent packages in the pool'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "packages" -d 'List the extent packages in the pool'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "compose" -d 'Compose a read-only /usr view from a package list'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "views" -d 'List the views in the pool'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "rm-view" -d 'Delete a view'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "list" -d 'List the packages of a view (or any /usr tree), like rpm -qa'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "query" -d 'Query a view\'s packages: -f PATH, -l PKG, -i PKG, --provides/--requires PKG, --whatprovides CAP'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "diff" -d 'Package (and with --files, file) differences between two views'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "verify" -d 'Check every file of a view against its package header, like rpm -V (exit 1 on mismatch)'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "dedupe" -d 'Share identical content across extent packages (FIDEDUPERANGE; rebuilds big-extent packages)'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "usage" -d 'Bytes referenced, shared and exclusive per package and view, counted like compsize'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "gc" -d 'Remove extent packages no view or image manifest references; clean tmp/'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "publish" -d 'Publish an image version into a repository (or --prune it)'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "sync" -d 'Bring the pool to an image version from a repository (rsync, ssh, path, http)'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "fsck" -d 'Check the pool: every package against its index and header, every view complete'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "deploy" -d 'Make a bootable deployment of a view, the default for the next boot'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "status" -d 'The deployments of a system: booted, default, pinned, package diffs'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "upgrade" -d 'Sync the image the system follows, compose its new version from the view in use, deploy it'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "apply-live" -d 'Make the default (staged) deployment\'s view the running /usr now, without a reboot'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "rollback" -d 'Make the previous deployment the default again'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "pin" -d 'Keep a deployment whatever the retention setting'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "unpin" -d 'Let retention remove a deployment again'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "undeploy" -d 'Remove one deployment (not the booted one, not the default, not a pinned one)'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "cleanup" -d 'Remove the deployments retention does not keep'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "finalize" -d 'Merge /etc into the staged deployment again (at shutdown, from reimage-finalize.service)'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "etc" -d 'The history of /etc: commit, log, diff, revert; sync into another deployment'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "install" -d 'Make a bootable disk from packages: GPT, ESP with systemd-boot, btrfs with the pool and deployment 1'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "boot" -d 'Boot entries: check for a fallback at boot, or sync the ESP with the state record'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "health" -d 'Run the health checks of /etc/reimage/health.d (boot assessment); exit 1 when a required one fails'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck deploy status upgrade apply-live rollback pin unpin undeploy cleanup finalize etc install boot health help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reimage -n "__fish_reimage_using_subcommand help; and __fish_seen_subcommand_from etc" -f -a "commit" -d 'Save /etc as a read-only snapshot (its history; the oldest beyond --limit go)'
complete -c reimage -n "__fish_reimage_using_subcommand help; and __fish_seen_subcommand_from etc" -f -a "log" -d 'List the commits of /etc'
complete -c reimage -n "__fish_reimage_using_subcommand help; and __fish_seen_subcommand_from etc" -f -a "diff" -d 'What changed in /etc since commit REV (default: the newest)'
complete -c reimage -n "__fish_reimage_using_subcommand help; and __fish_seen_subcommand_from etc" -f -a "revert" -d 'Make /etc commit REV again'
complete -c reimage -n "__fish_reimage_using_subcommand help; and __fish_seen_subcommand_from etc" -f -a "sync" -d 'Carry this /etc\'s changes into deployment ID (e.g. a rollback target)'
complete -c reimage -n "__fish_reimage_using_subcommand help; and __fish_seen_subcommand_from boot" -f -a "check" -d 'At boot: if systemd-boot fell back from a default with no tries left, mark it failed and make the booted deployment the default'
complete -c reimage -n "__fish_reimage_using_subcommand help; and __fish_seen_subcommand_from boot" -f -a "sync" -d 'Bring the ESP\'s entries in line with the state record'
