# Shared build settings and helpers for Sealgate modules and tests.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET openssl)
pkg_check_modules(GMIME REQUIRED IMPORTED_TARGET gmime-3.0)
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
pkg_check_modules(LIBEVENT REQUIRED IMPORTED_TARGET libevent libevent_openssl libevent_pthreads)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)

set(SG_WARN -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes
	-Wmissing-prototypes -Wno-unused-parameter -Wno-format-truncation
	$<$<C_COMPILER_ID:Clang>:-Wno-unknown-warning-option>)
set(SG_HARDEN -fstack-protector-strong)
if(NOT SG_SANITIZE AND NOT CMAKE_BUILD_TYPE STREQUAL "Debug")
	list(APPEND SG_HARDEN -D_FORTIFY_SOURCE=3)
endif()
add_link_options(-Wl,-z,relro,-z,now)
if(SG_SANITIZE)
	add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
		-fno-sanitize-recover=undefined)
	add_link_options(-fsanitize=address,undefined)
endif()
if(SG_FUZZ)
	add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
	add_link_options(-fsanitize=address,undefined)
endif()

# sg_add_module(NAME SOURCES ... DEPS ...) - one static library per module.
function(sg_add_module name)
	cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
	add_library(sg_${name} STATIC ${M_SOURCES})
	target_include_directories(sg_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
	target_compile_options(sg_${name} PRIVATE
		$<$<COMPILE_LANGUAGE:C>:${SG_WARN} ${SG_HARDEN}>)
	target_link_libraries(sg_${name} PUBLIC ${M_DEPS})
endfunction()

# sg_add_test(NAME SOURCES ... DEPS ... LABELS ... [ENV k=v ...]) - one cmocka executable.
function(sg_add_test name)
	cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;DEPS;LABELS;ENV" ${ARGN})
	add_executable(${name} ${T_SOURCES})
	target_compile_options(${name} PRIVATE ${SG_WARN} -Wno-missing-prototypes)
	target_link_libraries(${name} PRIVATE ${T_DEPS} PkgConfig::CMOCKA)
	add_test(NAME ${name} COMMAND ${name})
	if(NOT T_LABELS)
		set(T_LABELS unit)
	endif()
	if(NOT T_TIMEOUT)
		set(T_TIMEOUT 120)
	endif()
	set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
		ENVIRONMENT "SG_SRC=${PROJECT_SOURCE_DIR};SG_BUILD=${PROJECT_BINARY_DIR};${T_ENV}")
endfunction()

# sg_add_script_test(NAME SCRIPT LABELS ... [TIMEOUT s]) - a shell-driven e2e test.
function(sg_add_script_test name script)
	cmake_parse_arguments(T "" "TIMEOUT" "LABELS;ARGS" ${ARGN})
	add_test(NAME ${name} COMMAND ${script} ${T_ARGS})
	if(NOT T_TIMEOUT)
		set(T_TIMEOUT 300)
	endif()
	set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
		ENVIRONMENT "SG_SRC=${PROJECT_SOURCE_DIR};SG_BUILD=${PROJECT_BINARY_DIR}")
endfunction()
