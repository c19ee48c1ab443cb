# install.cmake - what `make install`, the Debian package and the container image install, besides
# libedgeflag (src/client/client.cmake installs the library, its header and edgeflag.pc):
#   bin/edgeflag                        the server and its commands
#   share/man/man1/edgeflag*.1          one man page per command, made from its --help by help2man
#   lib/systemd/system/edgeflag.service a hardened unit (EF_SYSTEMD_UNITDIR overrides the directory)
#   lib/sysusers.d/edgeflag.conf        the dedicated system user the unit runs as
#   etc/edgeflag/config.yml             the example configuration the unit starts with
# Paths written into generated files (the unit's ExecStart, its --config) are the ones of
# CMAKE_INSTALL_PREFIX at configure time: scripts/build-install.sh configures with the prefix it
# installs to. This file must never install anything outside the prefix except through DESTDIR.
include(GNUInstallDirs)

set(EF_SYSTEMD_UNITDIR "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" CACHE PATH
    "where edgeflag.service is installed (Debian 12 packages: /lib/systemd/system)")
set(EF_SYSUSERSDIR "${CMAKE_INSTALL_PREFIX}/lib/sysusers.d" CACHE PATH
    "where the sysusers.d file creating the edgeflag user is installed")
set(EF_CONFIG_FILE "${CMAKE_INSTALL_FULL_SYSCONFDIR}/edgeflag/config.yml")

install(TARGETS edgeflag RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# ---- man pages: help2man over each command's --help, plus the hand-written sections of
# packaging/man/NAME.h2m (description, examples, files, see also). Generated at build time, so a
# new option shows up in the page without anyone editing it.
find_program(EF_HELP2MAN help2man)
if(NOT EF_HELP2MAN)
  message(FATAL_ERROR "help2man not found: the man pages are made with it at build time. "
          "Install it with scripts/install-deps.sh build (Debian package help2man).")
endif()
# page name | arguments that print its help | one-line description (the NAME section).
# tests/pkg/install.sh fails when a command `edgeflag --help` lists has no page here.
set(EF_MAN_PAGES
  "edgeflag|--help|Flipt-compatible feature-flag server and tools"
  "edgeflag-serve|serve --help|serve Flipt's REST, evaluation, OFREP and snapshot APIs"
  "edgeflag-import|import --help|import Flipt declarative flag files into a store"
  "edgeflag-export|export --help|export a store as a Flipt declarative document"
  "edgeflag-validate|validate --help|check Flipt declarative flag files"
  "edgeflag-eval|eval --help|evaluate JSON-lines requests against a Flipt snapshot document"
  "edgeflag-routes|routes --help|print the HTTP route table serve would use"
  "edgeflag-backup|backup --help|write a consistent online copy of a store"
  "edgeflag-restore|restore --help|replace a store with a backup, under a new history")
set(EF_MAN_OUTPUTS "")
foreach(entry IN LISTS EF_MAN_PAGES)
  string(REPLACE "|" ";" parts "${entry}")
  list(GET parts 0 page)
  list(GET parts 1 helpopt)
  list(GET parts 2 desc)
  set(out ${CMAKE_BINARY_DIR}/man/${page}.1)
  set(inc ${CMAKE_SOURCE_DIR}/packaging/man/${page}.h2m)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND ${EF_HELP2MAN} --no-info --no-discard-stderr --section=1
            "--manual=edgeflag manual" "--version-string=${page} (edgeflag) ${PROJECT_VERSION}"
            "--help-option=${helpopt}" "--name=${desc}" --include=${inc}
            --output=${out} $<TARGET_FILE:edgeflag>
    DEPENDS edgeflag ${inc}
    COMMENT "man page ${page}(1)"
    VERBATIM)
  list(APPEND EF_MAN_OUTPUTS ${out})
endforeach()
add_custom_target(edgeflag_man ALL DEPENDS ${EF_MAN_OUTPUTS})
install(FILES ${EF_MAN_OUTPUTS} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# ---- systemd unit, system user, example configuration
set(EF_UNIT_BINARY "${CMAKE_INSTALL_FULL_BINDIR}/edgeflag")
set(EF_UNIT_ENVFILE "${CMAKE_INSTALL_FULL_SYSCONFDIR}/edgeflag/edgeflag.env")
configure_file(${CMAKE_SOURCE_DIR}/packaging/edgeflag.service.in
               ${CMAKE_BINARY_DIR}/edgeflag.service @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/edgeflag.service DESTINATION ${EF_SYSTEMD_UNITDIR})
install(FILES ${CMAKE_SOURCE_DIR}/packaging/edgeflag.sysusers
        DESTINATION ${EF_SYSUSERSDIR} RENAME edgeflag.conf)
# The FULL directory: with the prefix /usr, GNUInstallDirs puts configuration in /etc, not /usr/etc.
install(FILES ${CMAKE_SOURCE_DIR}/packaging/config.yml
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/edgeflag)
