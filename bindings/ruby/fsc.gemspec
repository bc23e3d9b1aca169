# frozen_string_literal: true

# `gem build fsc.gemspec` in a checkout: SWIG writes the extension's wrapper
# into ext/fsc_native first, and the gem ships it, so `gem install` needs no
# SWIG; it compiles the wrapper against the installed libfsc (extconf.rb).
top = File.expand_path("../..", __dir__)
interface = File.join(top, "bindings", "fsc.i")
wrapper = File.join(__dir__, "ext", "fsc_native", "fsc_ruby_wrap.c")
if File.exist?(interface)
  begin
    # The same command as bindings/ruby/meson.build.
    system("swig", "-ruby", "-module", "Fsc::Native", "-initname", "fsc_native",
           "-I#{top}/include", "-I#{top}/bindings", "-o", wrapper, interface, exception: true)
  rescue SystemCallError, RuntimeError => e
    abort "fsc.gemspec: generating #{wrapper} needs swig: #{e.message}"
  end
end

Gem::Specification.new do |s|
  s.name = "fsc"
  s.version = File.read(File.join(top, "meson.build"))[/^\s*version : '([^']+)'/, 1]
  s.summary = "Persistent, size-bounded, cross-process filesystem cache with dogpile protection"
  s.description = "Ruby binding of libfsc, and ActiveSupport::Cache::FscStore " \
                  "(config.cache_store = :fsc_store, \"/path\")."
  s.license = "MIT"
  s.homepage = "https://github.com/fsc-cache/fsc"
  s.authors = ["fsc"]
  s.required_ruby_version = ">= 2.7"
  s.files = Dir.chdir(__dir__) do
    Dir["lib/**/*.rb"] + ["README.md", "ext/fsc_native/extconf.rb", "ext/fsc_native/fsc_ruby_wrap.c"]
  end
  s.require_paths = ["lib"]
  s.extensions = ["ext/fsc_native/extconf.rb"]
end
