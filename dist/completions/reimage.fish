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
complete -c reimage -n "__fish_reimage_using_subcommand compose" -l from -d 'Start from this view and apply only the package difference' -r
complete -c reimage -n "__fish_reimage_using_subcommand compose" -l passwd -d 'passwd file for owner names the view\'s own files do not define' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand compose" -l group -d 'group file for group names the view\'s own files do not define' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand compose" -l relocate -d 'Map paths outside /usr: --relocate /opt/foo=/usr/lib/foo (repeatable)' -r
complete -c reimage -n "__fish_reimage_using_subcommand compose" -l pool -d 'The pool directory' -r -F
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
complete -c reimage -n "__fish_reimage_using_subcommand sync" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand sync" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand sync" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand sync" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -l pool -d 'The pool directory' -r -F
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -l repair -d 'Remove what is provably garbage: tmp/ content and temporary files left by interrupted writes. Never packages or views'
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -l full -d 'Also check every file against its header\'s file digest (slower)'
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -l no-wait -d 'With --repair: fail at once if another writer holds the pool'
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -s v -l verbose -d 'Say more (commands run, per-package detail)'
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -s q -l quiet -d 'Say nothing but errors; no progress bars'
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -l json -d 'Machine-readable output on stdout'
complete -c reimage -n "__fish_reimage_using_subcommand fsck" -s h -l help -d 'Print help'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck help" -f -a "init" -d 'Prepare a pool (optionally inside a loop-mounted btrfs image)'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck help" -f -a "import" -d 'Transcode RPM files into extent packages in the pool'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck help" -f -a "packages" -d 'List the extent packages in the pool'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck help" -f -a "compose" -d 'Compose a read-only /usr view from a package list'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck help" -f -a "views" -d 'List the views in the pool'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck help" -f -a "rm-view" -d 'Delete a view'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck help" -f -a "list" -d 'List the packages of a view (or any /usr tree), like rpm -qa'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck help" -f -a "query" -d 'Query a view\'s packages: -f PATH, -l PKG, -i PKG, --provides/--requires PKG, --whatprovides CAP'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck help" -f -a "diff" -d 'Package (and with --files, file) differences between two views'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck help" -f -a "verify" -d 'Check every file of a view against its package header, like rpm -V (exit 1 on mismatch)'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck help" -f -a "dedupe" -d 'Share identical content across extent packages (FIDEDUPERANGE; rebuilds big-extent packages)'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck help" -f -a "usage" -d 'Bytes referenced, shared and exclusive per package and view, counted like compsize'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck help" -f -a "gc" -d 'Remove extent packages no view or image manifest references; clean tmp/'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck help" -f -a "publish" -d 'Publish an image version into a repository (or --prune it)'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck help" -f -a "sync" -d 'Bring the pool to an image version from a repository (rsync, ssh, path, http)'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck help" -f -a "fsck" -d 'Check the pool: every package against its index and header, every view complete'
complete -c reimage -n "__fish_reimage_using_subcommand help; and not __fish_seen_subcommand_from init import packages compose views rm-view list query diff verify dedupe usage gc publish sync fsck help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
